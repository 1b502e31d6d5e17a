"""Where the API process spends its time: py-spy samples of the running server.

`python -m bench --profile` records the API process with py-spy (`pip install
py-spy`; it needs ptrace rights, e.g. root) while it serves (a) signed
`registerInteraction` webhooks at concurrency 32 and (b) each dashboard tenant's
dashboard, one request at a time. Each recording is kept as raw collapsed stacks
(`bench/results/profile-<run>-<what>.txt`, open it in speedscope or flamegraph.pl)
and summarised in the results: the share of the samples (only threads that run,
not idle ones) whose stack passes through each library area, and the functions
with the most samples, inclusive and self.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.config import RESULTS, Target
from bench.dashboard import QUERY, variables
from bench.http import Connection, graphql_body, graphql_data
from bench.server import Server
from bench.webhooks import CONCURRENCY, MUTATIONS, _send_all, _variables
from service.auth.webhooks import sign

RATE = 200  # samples per second
SECONDS = 20

# Areas by the frame's file (py-spy prints paths relative to sys.path), tested
# in this order; a sample counts once per area for "inclusive", and for its
# innermost frame's area for "self".
AREAS: tuple[tuple[str, str], ...] = (
    ("graphql-core validation", "graphql/validation/"),
    ("graphql-core parsing", "graphql/language/"),
    ("graphql-core execution", "graphql/execution/"),
    ("graphql-core other", "graphql/"),
    ("strawberry", "strawberry/"),
    ("SQLAlchemy ORM", "sqlalchemy/orm/"),
    ("SQLAlchemy core/engine", "sqlalchemy/"),
    ("asyncpg", "asyncpg/"),
    ("aiosqlite", "aiosqlite/"),
    ("starlette", "starlette/"),
    ("uvicorn", "uvicorn/"),
    ("pydantic", "pydantic"),
    ("json", "json/"),
    ("asyncio event loop", "asyncio/"),
    ("service: graphql", "service/graphql/"),
    ("service: usage", "service/usage/"),
    ("service: auth", "service/auth/"),
    ("service: db", "service/db/"),
    ("service: live", "service/live/"),
    ("service: other", "service/"),
)
# The frames every request passes through (left out of the function lists).
SPINE = (
    "<frozen",
    "asyncio/",
    "uvicorn/",
    "starlette/",
    "service/__main__.py",
    "service/middleware.py",
    "service/app.py",
)
FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _area(path: str) -> str:
    for name, prefix in AREAS:
        if path.startswith(prefix):
            return name
    return "other (stdlib)"


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    """Shares of the samples by area (inclusive and self) and top functions."""
    total = 0
    inclusive: Counter[str] = Counter()
    self_area: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    self_functions: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for part in stack.split(";"):
            match = FRAME.match(part.strip())
            if match:
                file = match["file"]
                frames.append((f"{match['name']} ({file})", file))
        if not frames:
            continue
        total += count
        for area in {_area(file) for _, file in frames}:
            inclusive[area] += count
        for function in {n for n, f in frames if not f.startswith(SPINE)}:
            functions[function] += count
        leaf_name, leaf_file = frames[-1]
        self_area[_area(leaf_file)] += count
        self_functions[leaf_name] += count

    def share(counter: Counter[str], n: int | None = None) -> list[list[Any]]:
        return [[name, round(100 * c / total, 1)] for name, c in counter.most_common(n)]

    return {
        "samples": total,
        "self_by_area_percent_note": "innermost frame's area; sums to 100",
        "inclusive_by_area_percent": share(inclusive) if total else [],
        "self_by_area_percent": share(self_area) if total else [],
        "top_inclusive_functions_percent": share(functions, top) if total else [],
        "top_self_functions_percent": share(self_functions, top) if total else [],
    }


def py_spy() -> str:
    """The py-spy executable (next to this Python, or on PATH)."""
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    return found


async def _record(pid: int, out: Path, seconds: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(RATE),
        "--duration",
        str(seconds),
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _profiled(
    server: Server, label: str, target: Target, drive: Any
) -> dict[str, Any]:
    """Record the server while `drive(deadline)` sends requests."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"profile-{target.key}-{label}.txt"
    recorder = await _record(server.pid, out, SECONDS)
    await asyncio.sleep(1.0)  # py-spy attaches
    requests = await drive(time.perf_counter() + SECONDS - 2)
    _, err = await recorder.communicate()
    if recorder.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed: {err.decode()[-300:]}")
    summary = summarise(out.read_text())
    return {
        "file": str(out.relative_to(RESULTS.parent.parent)),
        "requests": requests,
        **summary,
    }


async def run(
    target: Target, server: Server, meta: dict[str, Any], key: str
) -> dict[str, Any]:
    """Profiles of registerInteraction webhooks and of each tenant's dashboard."""
    results: dict[str, Any] = {"rate_hz": RATE, "seconds": SECONDS}
    r = random.Random(int(time.time() * 1000))

    async def webhooks(deadline: float) -> int:
        sent = 0
        while time.perf_counter() < deadline:
            requests = []
            builder = Connection("127.0.0.1", server.port)
            for _ in range(CONCURRENCY * 4):
                body = graphql_body(
                    MUTATIONS["registerInteraction"],
                    _variables("registerInteraction", r),
                )
                headers = {"X-Webhook-Signature": sign(server.webhook_secret, body)}
                requests.append(builder.prepare("POST", "/graphql", body, headers))
            await _send_all(server, requests)
            sent += len(requests)
        return sent

    results["registerInteraction"] = await _profiled(
        server, "registerInteraction", target, webhooks
    )
    for label, tenant in meta["tenants"].items():
        connection = Connection("127.0.0.1", server.port)
        request = connection.prepare(
            "POST",
            "/graphql",
            graphql_body(QUERY, variables(tenant)),
            {"Authorization": f"Bearer {key}"},
        )

        async def dashboards(
            deadline: float,
            connection: Connection = connection,
            request: bytes = request,
        ) -> int:
            sent = 0
            try:
                while time.perf_counter() < deadline:
                    graphql_data(*await connection.send(request))
                    sent += 1
            finally:
                await connection.close()
            return sent

        results[f"dashboard {label}"] = await _profiled(
            server, f"dashboard-{label}", target, dashboards
        )
    return results
