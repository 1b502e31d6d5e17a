"""A whole deployment as processes on one PostgreSQL database, and its ledger checks.

`serve --workers 2`, two `worker` processes and `corti-sandbox`, all as
`python -m service ...` processes (bench/processes.py), on a database the
caller provides (tests/ops/deployment.py: a throwaway cluster; bench/soak.py:
a fresh database on a shared server). The checks compare what a `MixedLoad`
was told with what the database holds, what the sandbox billed and what live
subscribers received; a failed check raises `Mismatch` (an AssertionError).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench import processes
from bench.live import Subscriber
from bench.mixed import Key, MixedLoad, Plan
from bench.server import descendants, free_port
from corti_sandbox.testing import SandboxControl
from service.auth import keys
from service.auth.principal import Role
from service.db.models import Job, UsageRecord
from service.db.session import Database
from service.migrate import upgrade

WEBHOOK_SECRET = "whsec-ops-test"
REQUEST_TIMEOUT_SECONDS = 5
# Fast polling and retries, so a job is picked up and retried within a second.
FAST_WORKER = {
    "WORKER_POLL_SECONDS": "0.2",
    "JOB_RETRY_BASE_SECONDS": "0.2",
    "JOB_RETRY_MAX_SECONDS": "1",
}


class Mismatch(AssertionError):
    """What the load was told and what the deployment holds differ."""


def require(condition: object, message: object) -> None:
    """Raise `Mismatch(message)` unless `condition` (kept under python -O)."""
    if not condition:
        raise Mismatch(message)


@dataclass
class Deployment:
    """The running processes and how to reach them."""

    database_url: str
    db: Database
    api: processes.Process
    workers: list[processes.Process]
    sandbox: processes.Process
    control: SandboxControl
    key: str
    port: int
    logs: list[Path]

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
        children = sorted(descendants(self.api.process.pid))
        pids = []
        for pid in children:
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(pid)
            except OSError:
                continue
        return pids

    def server_pids(self) -> dict[str, list[int]]:
        """Every process of the API and of each worker, the sandbox's apart."""
        groups = {
            "api": self.api,
            **{f"worker-{n + 1}": w for n, w in enumerate(self.workers)},
        }
        groups["sandbox"] = self.sandbox
        return {
            name: [running.process.pid, *sorted(descendants(running.process.pid))]
            for name, running in groups.items()
        }

    def output(self) -> str:
        """Every process's log, for failure messages."""
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-6000:]}"
            for log in self.logs
        )

    def load(self, run_id: str, **plan: Any) -> MixedLoad:
        """A MixedLoad on this deployment."""
        return MixedLoad(
            self.url,
            key=self.key,
            webhook_secret=WEBHOOK_SECRET,
            plan=Plan(**plan),
            run_id=run_id,
        )


@asynccontextmanager
async def deploy(
    database_url: str, directory: Path, *, env: Mapping[str, str] | None = None
) -> AsyncIterator[Deployment]:
    """Migrate `database_url`, then sandbox, API and workers; all stopped after.

    `env` overrides the processes' settings (default: REQUEST_TIMEOUT_SECONDS 5
    and FAST_WORKER); the Corti settings always point at the sandbox.
    """
    async with AsyncExitStack() as stack:
        await asyncio.to_thread(upgrade, database_url)
        db = Database.from_url(database_url)
        stack.push_async_callback(db.dispose)
        async with db.write() as session:
            _, key = await keys.create_key(session, Role.ADMIN, None)
        sandbox_port = free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        settings = (
            dict(env)
            if env is not None
            else {
                "REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT_SECONDS),
                **FAST_WORKER,
            }
        )
        process_env = processes.environment(
            DATABASE_URL=database_url,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            **settings,
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
                env=process_env,
                log=logs[0],
                ready_url=f"{sandbox_url}/_sandbox/stats",
            )
        )
        control = SandboxControl(sandbox_url)
        stack.push_async_callback(control.aclose)
        port = free_port()
        api = await stack.enter_async_context(
            processes.serve(process_env, logs[1], workers=2, port=port)
        )
        workers = [
            await stack.enter_async_context(processes.worker(process_env, log))
            for log in logs[2:]
        ]
        yield Deployment(
            database_url=database_url,
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
    require(not missing, f"acknowledged jobs not stored: {missing[:10]}")
    unfinished = {j: found[j][0] for j in job_ids if found[j][0] != "SUCCEEDED"}
    require(not unfinished, f"jobs not SUCCEEDED: {list(unfinished.items())[:10]}")
    return {j: found[j][1] for j in job_ids}


async def assert_jobs_billed_once(deployment: Deployment) -> int:
    """The sandbox's ledger equals the usage records of our Corti jobs.

    Every job of the database (of every load on this deployment, and any a
    lost answer created twice), so the comparison is exact both ways.
    """
    billed = await deployment.control.billed()
    ids = Counter(entry["id"] for entry in billed)
    require(all(n == 1 for n in ids.values()), f"billed twice: {ids.most_common(3)}")
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
    unfinished = [job for job in jobs if job[1] != "SUCCEEDED"]
    require(not unfinished, f"jobs not SUCCEEDED: {unfinished[:5]}")
    ours = Counter((s, e, c, i) for _, _, s, e, c, i in jobs)
    theirs = Counter(
        (e["kind"].upper(), e["id"], Decimal(e["credits"]), e["interaction_id"])
        for e in billed
        if e["kind"] in ("transcript", "document")
    )
    require(
        ours == theirs,
        f"ours only: {list(ours - theirs)[:5]}; billed only: {list(theirs - ours)[:5]}",
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
        answered = Decimal(data["tenant"]["credits"]["total"])
        require(answered == total, f"{tenant}: API {answered}, records {total}")


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
        keys_sent = []
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
            keys_sent.append(("STREAM", stream))
        round_end = time.monotonic() + 2
        while time.monotonic() < round_end:
            if all(s.seen[k] for s in subscribers for k in keys_sent):
                return time.time()
            await asyncio.sleep(0.02)
        if time.monotonic() > deadline:
            missing = [
                s.pid for s in subscribers if not all(s.seen[k] for k in keys_sent)
            ]
            raise Mismatch(f"live events do not reach subscribers on {missing}")


@dataclass
class Exact:
    """What `check_exact` counted (it raises `Mismatch` on any difference)."""

    records: int = 0  # usage records of the load's tenants, jobs' included
    acknowledged: int = 0  # records the load was told were stored
    jobs: int = 0
    billed: int = 0  # job records the sandbox billed, each once
    subscribers: int = 0
    calls: dict[str, int] = field(default_factory=dict)


async def check_exact(
    deployment: Deployment, load: MixedLoad, subscribers: list[Subscriber]
) -> Exact:
    """A run without failures: everything acknowledged stored, billed, announced once.

    Every acknowledged record is stored once with its credits and nothing else
    is (`accepted` summed over the batches counts each new record once), the
    API's tenant totals equal the records', every job SUCCEEDED and the
    sandbox's ledger equals the job records, and every subscriber received
    every record exactly once. Call it after the senders stopped, the jobs
    ended and the last live events arrived.
    """
    require(not load.failures, f"failed attempts: {load.failures[:5]}")
    require(not load.id_mismatches, f"ids differ: {load.id_mismatches[:5]}")

    jobs = await job_records(deployment.db, load.jobs)
    require(len(set(jobs.values())) == len(load.jobs), "two jobs share a usage record")
    held = await stored(deployment.db, load.tenants)
    job_keys = set(jobs.values())
    webhook_keys = set(held.records) - job_keys
    acked = set(load.acked)
    require(
        webhook_keys == acked,
        f"stored, not acknowledged: {len(webhook_keys - acked)} "
        f"{list(webhook_keys - acked)[:5]}; acknowledged, not stored: "
        f"{len(acked - webhook_keys)} {list(acked - webhook_keys)[:5]}",
    )
    wrong = [k for k in webhook_keys if held.records[k][1] != load.acked[k].credits]
    require(not wrong, f"stored with other credits: {wrong[:5]}")
    require(
        load.accepted + load.singles_new == len(load.acked),
        f"counted new: {load.accepted} in batches + {load.singles_new} singles, "
        f"acknowledged {len(load.acked)}",
    )

    await assert_api_totals(load, held.totals(load.tenants))
    billed = await assert_jobs_billed_once(deployment)
    require(billed >= len(load.jobs), f"{billed} jobs billed of {len(load.jobs)}")

    everything = set(held.records)
    for subscriber in subscribers:
        require(subscriber.closed is None, f"{subscriber.pid}: {subscriber.closed}")
        require(not subscriber.errors, f"{subscriber.pid}: {subscriber.errors[:3]}")
        seen = set(subscriber.seen)
        require(
            seen == everything,
            f"subscriber on {subscriber.pid}: {len(everything - seen)} records "
            f"not received, {len(seen - everything)} not stored",
        )
        twice = [k for k, n in subscriber.seen.items() if n > 1]
        require(not twice, f"subscriber on {subscriber.pid} got twice: {twice[:5]}")
    return Exact(
        records=len(held.records),
        acknowledged=len(load.acked),
        jobs=len(load.jobs),
        billed=billed,
        subscribers=len(subscribers),
        calls=dict(load.calls),
    )
