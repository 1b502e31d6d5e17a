"""A whole deployment on a throwaway PostgreSQL cluster, and its ledger checks.

`serve --workers 2`, two `worker` processes and `corti-sandbox`, all as
`python -m service ...` processes, on a cluster the test may stop and restart
(tests/ops/pgcluster.py). The checks compare what a `MixedLoad` was told with
what the database holds, what the sandbox billed and what live subscribers
received.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import select

from bench.live import Subscriber
from bench.mixed import Key, MixedLoad
from corti_sandbox.testing import SandboxControl
from service.db.models import Job, UsageRecord
from service.db.session import Database
from service.migrate import upgrade
from tests.fixtures.app import free_port, make_key
from tests.ops import processes
from tests.ops.pgcluster import Cluster

WEBHOOK_SECRET = "whsec-ops-test"
REQUEST_TIMEOUT_SECONDS = 5


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class Deployment:
    """The running processes and how to reach them."""

    cluster: Cluster
    database_url: str
    db: Database
    api: processes.Process
    workers: list[processes.Process]
    sandbox: processes.Process
    control: SandboxControl
    key: str
    port: int
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The API's websocket URL."""
        return f"ws://127.0.0.1:{self.port}/graphql"

    def api_pids(self) -> list[int]:
        """The API's worker processes (children of `serve`, the metrics helper aside)."""
        children = _children(self.api.process.pid)
        return [
            pid
            for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]

    def output(self) -> str:
        """Every process's log, for failure messages."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-6000:]}"
            for log in self.logs
        )

    def load(self, run_id: str, **plan: Any) -> MixedLoad:
        """A MixedLoad on this deployment."""
        from bench.mixed import Plan

        return MixedLoad(
            self.url,
            key=self.key,
            webhook_secret=WEBHOOK_SECRET,
            plan=Plan(**plan),
            run_id=run_id,
        )


@asynccontextmanager
async def deployment(directory: Path) -> AsyncIterator[Deployment]:
    """Cluster, database, sandbox, API and workers; everything stopped after."""
    cluster = Cluster()
    async with AsyncExitStack() as stack:
        stack.callback(cluster.remove)
        await asyncio.to_thread(cluster.start)
        conn = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
        )
        try:
            await conn.execute("CREATE DATABASE ledger")
        finally:
            await conn.close()
        url = f"{cluster.server_url}/ledger"
        await asyncio.to_thread(upgrade, url)
        db = Database.from_url(url)
        stack.push_async_callback(db.dispose)
        key = await make_key(db, "admin")
        sandbox_port = free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        env = processes.environment(
            DATABASE_URL=url,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            REQUEST_TIMEOUT_SECONDS=str(REQUEST_TIMEOUT_SECONDS),
            WORKER_POLL_SECONDS="0.2",
            JOB_RETRY_BASE_SECONDS="0.2",
            JOB_RETRY_MAX_SECONDS="1",
            CORTI_BASE_URL=f"{sandbox_url}/v2",
            CORTI_WSS_URL=f"ws://127.0.0.1:{sandbox_port}/audio-bridge/v2",
            CORTI_LOGIN_URL=f"{sandbox_url}/realms",
            CORTI_TENANT_NAME="base",
            CORTI_CLIENT_ID="ops",
            CORTI_CLIENT_SECRET="ops",
        )
        logs = [
            directory / name
            for name in ("sandbox.log", "serve.log", "worker-1.log", "worker-2.log")
        ]
        sandbox = await stack.enter_async_context(
            processes.service(
                "corti-sandbox",
                "--port",
                str(sandbox_port),
                env=env,
                log=logs[0],
                ready_url=f"{sandbox_url}/_sandbox/stats",
            )
        )
        control = SandboxControl(sandbox_url)
        stack.push_async_callback(control.aclose)
        port = free_port()
        api = await stack.enter_async_context(
            processes.serve(env, logs[1], workers=2, port=port)
        )
        workers = [
            await stack.enter_async_context(processes.worker(env, log))
            for log in logs[2:]
        ]
        yield Deployment(
            cluster=cluster,
            database_url=url,
            db=db,
            api=api,
            workers=workers,
            sandbox=sandbox,
            control=control,
            key=key,
            port=port,
            logs=logs,
        )


# --- checks ----------------------------------------------------------------------


@dataclass
class Stored:
    """A tenant set's usage records in the database."""

    records: dict[
        Key, tuple[str, Decimal, datetime]
    ]  # key -> tenant, credits, received

    def totals(self, tenants: list[str]) -> dict[str, Decimal]:
        """Credits per tenant."""
        totals = {tenant: Decimal(0) for tenant in tenants}
        for tenant, credits, _ in self.records.values():
            totals[tenant] += credits
        return totals


async def stored(db: Database, tenants: list[str]) -> Stored:
    """Every usage record of `tenants`."""
    async with db.read() as session:
        rows = await session.execute(
            select(
                UsageRecord.source,
                UsageRecord.external_id,
                UsageRecord.tenant_id,
                UsageRecord.credits,
                UsageRecord.received_at,
            ).where(UsageRecord.tenant_id.in_(tenants))
        )
        return Stored(
            {(s, e): (str(t), c, r) for s, e, t, c, r in rows.all()},
        )


async def job_records(db: Database, job_ids: list[str]) -> dict[str, Key]:
    """The usage record of each job, by job id (every job must have one)."""
    async with db.read() as session:
        rows = await session.execute(
            select(Job.id, Job.status, UsageRecord.source, UsageRecord.external_id)
            .outerjoin(UsageRecord, UsageRecord.id == Job.usage_record_id)
            .where(Job.kind.in_(["requestDocument", "requestTranscript"]))
        )
        found = {str(i): (status, (s, e)) for i, status, s, e in rows.all()}
    missing = [j for j in job_ids if j not in found]
    assert not missing, f"acknowledged jobs not stored: {missing}"
    unfinished = {j: found[j][0] for j in job_ids if found[j][0] != "SUCCEEDED"}
    assert not unfinished, f"jobs not SUCCEEDED: {unfinished}"
    return {j: found[j][1] for j in job_ids}


async def assert_jobs_billed_once(deployment: Deployment) -> int:
    """The sandbox's ledger equals the usage records of our Corti jobs.

    Every job of the database (of every test on this deployment, and any a
    lost answer created twice), so the comparison is exact both ways.
    """
    billed = await deployment.control.billed()
    ids = Counter(entry["id"] for entry in billed)
    assert all(n == 1 for n in ids.values()), f"billed twice: {ids.most_common(3)}"
    async with deployment.db.read() as session:
        rows = await session.execute(
            select(
                Job.id,
                Job.status,
                UsageRecord.source,
                UsageRecord.external_id,
                UsageRecord.credits,
                UsageRecord.interaction_id,
            )
            .outerjoin(UsageRecord, UsageRecord.id == Job.usage_record_id)
            .where(Job.kind.in_(["requestDocument", "requestTranscript"]))
        )
        jobs = rows.all()
    assert all(status == "SUCCEEDED" for _, status, *_ in jobs), jobs
    ours = Counter((s, e, c, i) for _, _, s, e, c, i in jobs)
    theirs = Counter(
        (e["kind"].upper(), e["id"], Decimal(e["credits"]), e["interaction_id"])
        for e in billed
        if e["kind"] in ("transcript", "document")
    )
    assert ours == theirs, (
        f"ours only: {list(ours - theirs)[:5]}; billed only: {list(theirs - ours)[:5]}"
    )
    return len(jobs)


async def assert_api_totals(load: MixedLoad, expected: dict[str, Decimal]) -> None:
    """The API's tenant totals (rollups) equal `expected`."""
    for tenant, total in expected.items():
        data = await load.call(
            "totals",
            "query($t: ID!) { tenant(id: $t) { credits { total } } }",
            {"t": tenant},
        )
        assert Decimal(data["tenant"]["credits"]["total"]) == total, tenant


async def live_probe(
    load: MixedLoad, subscribers: list[Subscriber], *, within: float = 30.0
) -> float:
    """Send a record per tenant until every subscriber receives a round; when.

    Events sent while a process's listener reconnects are lost (at most once),
    so a round that is not seen within 2 s is followed by another.
    """
    deadline = time.monotonic() + within
    firsts: dict[str, str] = {}
    for interaction, tenant, _user in load.interactions:
        firsts.setdefault(tenant, interaction)
    while True:
        keys = []
        for interaction in firsts.values():
            stream = load._next("probe")
            await load.single(
                "STREAM",
                {
                    "in": {
                        "interactionId": interaction,
                        "streamId": stream,
                        "credits": "0.001",
                    }
                },
                redelivery=True,  # never abandoned
            )
            keys.append(("STREAM", stream))
        round_end = time.monotonic() + 2
        while time.monotonic() < round_end:
            if all(s.seen[k] for s in subscribers for k in keys):
                return time.time()
            await asyncio.sleep(0.02)
        if time.monotonic() > deadline:
            missing = [s.pid for s in subscribers if not all(s.seen[k] for k in keys)]
            raise AssertionError(f"live events do not reach subscribers on {missing}")


def job_keys(load: MixedLoad, records: dict[str, Key]) -> set[Key]:
    """The usage keys of the load's jobs."""
    return {records[j] for j in load.jobs}
