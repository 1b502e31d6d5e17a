"""The API server under test: `python -m service serve` as a child process."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import DATA, ROOT
from bench.http import Connection

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, ... of a process in kB (from /proc/<pid>/status)."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name.startswith("Vm") and rest.strip().endswith("kB"):
                values[name] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (uvicorn's worker processes, for --workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of every process below it that is running."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        try:
            total += cpu_seconds(each)
        except (OSError, IndexError):
            pass
    return total


def load_average() -> float:
    """The 1-minute load average (other work on the machine)."""
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


async def api_key(url: str, role: str = "admin") -> str:
    """`python -m service keys create --role ROLE`; the key is the last line."""
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "keys",
        "create",
        "--role",
        role,
        "--name",
        f"bench-{role}",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"keys create failed: {err.decode()}")
    return out.decode().strip().splitlines()[-1]


def _is_python(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"spawn_main" in cmdline.read()
    except OSError:
        return False


@dataclass
class Server:
    """A running server and what it has used so far."""

    url: str
    port: int = field(default_factory=free_port)
    webhook_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    log_path: Path = DATA / "server.log"
    workers: int = 1
    process: asyncio.subprocess.Process | None = None
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start it and wait until /readyz answers 200."""
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "WEBHOOK_SECRET": self.webhook_secret,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = await asyncio.to_thread(self.log_path.open, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.process.returncode is not None:
                raise RuntimeError(f"server exited; see {self.log_path}")
            try:
                connection = Connection("127.0.0.1", self.port)
                await connection.open()
                status, _ = await connection.request("GET", "/readyz")
                await connection.close()
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after 60 s; see {self.log_path}")
            await asyncio.sleep(0.2)
        self.snapshot("started")

    def cpu(self) -> float:
        """CPU seconds of the server so far (all its processes)."""
        return tree_cpu_seconds(self.pid)

    def api_pids(self) -> list[int]:
        """The processes that serve requests (the worker processes with --workers)."""
        if self.workers == 1:
            return [self.pid]
        return [p for p in descendants(self.pid) if _is_python(p)]

    def snapshot(self, label: str) -> dict[str, Any]:
        """Memory and CPU so far, remembered under a label."""
        status = proc_status(self.pid)
        entry = {
            "after": label,
            "vm_hwm_mb": round(status.get("VmHWM", 0) / 1024, 1),
            "vm_rss_mb": round(status.get("VmRSS", 0) / 1024, 1),
            "cpu_seconds": round(self.cpu(), 2),
        }
        self.snapshots.append(entry)
        return entry

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
