"""Service processes as a user runs them: `serve`, `worker`, `corti-sandbox`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.config import ROOT
from bench.server import free_port


@dataclass
class Process:
    """A running `python -m service ...` process and where its log goes."""

    process: asyncio.subprocess.Process
    log: Path
    url: str | None = None

    def output(self) -> str:
        """What the process wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal to the process (and so, for serve, to its workers)."""
        if self.process.returncode is None:
            self.process.send_signal(signum)

    async def stop(self, within: float = 30.0) -> int:
        """SIGTERM, then wait (SIGKILL after `within` seconds); the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


def environment(**values: str) -> dict[str, str]:
    """The test process's environment plus `values` (LOG_LEVEL WARNING)."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.setdefault("LOG_LEVEL", "WARNING")
    env.update(values)
    return env


@asynccontextmanager
async def service(
    *args: str, env: dict[str, str], log: Path, ready_url: str | None = None
) -> AsyncIterator[Process]:
    """Run `python -m service ARGS`; with `ready_url`, wait until it answers 200."""
    handle = log.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *args,
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = Process(process, log)
    try:
        if ready_url is not None:
            await wait_ready(running, ready_url)
        yield running
    finally:
        await running.stop()
        handle.close()


async def wait_ready(running: Process, url: str, within: float = 60.0) -> None:
    """Poll `url` until it answers 200 (fails if the process exits first)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if running.process.returncode is not None:
                raise AssertionError(f"process exited:\n{running.output()}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} not ready:\n{running.output()}")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def serve(
    env: dict[str, str], log: Path, *, workers: int = 1, port: int | None = None
) -> AsyncIterator[Process]:
    """`python -m service serve --workers N` on a free port."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    async with service(
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        env=env,
        log=log,
        ready_url=f"{url}/healthz",
    ) as running:
        running.url = url
        yield running


@asynccontextmanager
async def worker(
    env: dict[str, str], log: Path, *args: str, metrics_port: int | None = None
) -> AsyncIterator[Process]:
    """`python -m service worker` (with `--metrics-port`, once that answers)."""
    extra = [*args]
    ready = None
    if metrics_port is not None:
        extra += ["--metrics-port", str(metrics_port)]
        ready = f"http://127.0.0.1:{metrics_port}/metrics"
    async with service("worker", *extra, env=env, log=log, ready_url=ready) as running:
        running.url = ready and ready.removesuffix("/metrics")
        yield running
