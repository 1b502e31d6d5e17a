"""Many processes on one PostgreSQL database, and that database restarting.

One deployment for the module (tests/ops/deployment.py): `serve --workers 2`,
two `worker` processes and `corti-sandbox` as processes, on a throwaway
PostgreSQL cluster that these tests create, restart and stop (never the
shared one). A `MixedLoad` (bench/mixed.py) sends single webhook mutations
with redeliveries (signed and keyed), ingestUsage batches, Corti job
mutations and dashboard queries, while live subscribers on each API process
listen. PostgreSQL only: several processes sharing one database, LISTEN/NOTIFY
and a database that restarts under a running service are properties of a
PostgreSQL deployment (SQLite is one file of one host, without notifications).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bench.deployment import (
    REQUEST_TIMEOUT_SECONDS,
    WEBHOOK_SECRET,
    assert_api_totals,
    assert_jobs_billed_once,
    check_exact,
    job_records,
    live_probe,
    stored,
)
from bench.live import Subscriber, connect_per_process
from bench.mixed import Failure, MixedLoad
from service.auth.webhooks import sign
from service.db.models import UsageRecord
from tests.fixtures.database import BACKEND
from tests.ops import pgcluster
from tests.ops.deployment import ClusterDeployment as Deployment
from tests.ops.deployment import deployment

_reason = pgcluster.unavailable_reason()
if _reason and BACKEND == "postgresql" and os.environ.get("CI"):
    raise RuntimeError(f"tests/ops/test_database.py cannot run: {_reason}")

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(
        BACKEND != "postgresql",
        reason="PostgreSQL deployment property (many processes, LISTEN/NOTIFY, "
        "a database restart); runs with TEST_DATABASE=postgresql",
    ),
    pytest.mark.skipif(_reason is not None, reason=f"no throwaway cluster: {_reason}"),
]

LOAD_SECONDS = 8


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def deployed(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    async with deployment(tmp_path_factory.mktemp("deployment")) as running:
        yield running


async def _subscribers(deployed: Deployment, load: MixedLoad) -> list[Subscriber]:
    return await connect_per_process(
        deployed.ws_url,
        deployed.key,
        load.tenants,
        server_port=deployed.port,
        pids=deployed.api_pids(),
        per_process=2,
    )


async def test_many_processes_store_and_announce_every_record_once(
    deployed: Deployment,
) -> None:
    pids = deployed.api_pids()
    assert len(pids) == 2, deployed.output()
    load = deployed.load("mp")
    subscribers: list[Subscriber] = []
    try:
        await load.setup()
        subscribers = await _subscribers(deployed, load)
        assert {s.pid for s in subscribers} == set(pids)
        await live_probe(load, subscribers)
        stop = asyncio.Event()
        running = asyncio.create_task(load.run(stop))
        await asyncio.sleep(LOAD_SECONDS)
        stop.set()
        await running
        await load.wait_jobs(load.jobs)
        await asyncio.sleep(0.5)  # the last events in flight
        await _check_quiet_run(deployed, load, subscribers)
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        await load.aclose()


async def _check_quiet_run(
    deployed: Deployment, load: MixedLoad, subscribers: list[Subscriber]
) -> None:
    calls = load.calls
    for op in ("ingestUsage", "requestDocument", "requestTranscript", "dashboard"):
        assert calls[op], calls
    assert calls["webhook.recordStreamUsage.signed"], calls
    # Every acknowledged record stored once with its credits, nothing else; the
    # API's totals equal the records'; every job billed once; every subscriber,
    # on either process, received every record once (bench/deployment.py).
    exact = await check_exact(deployed, load, subscribers)
    assert exact.subscribers == 4
    assert exact.records == exact.acknowledged + exact.jobs


# --- the database goes away ------------------------------------------------------

LEAKS = ("Traceback", 'File "', "asyncpg", "sqlalchemy", "SELECT ", "INSERT ")
SETTLE_SECONDS = 2.0  # a record received this long before the outage was committed


@dataclass
class Probe:
    """One request sent while the database was down."""

    what: str
    status: int
    body: str
    headers: httpx.Headers
    seconds: float


async def test_database_restart_under_load(deployed: Deployment) -> None:
    async def restart() -> list[Probe]:
        await asyncio.to_thread(deployed.cluster.restart)
        return []

    await _outage_scenario(deployed, "rs", restart)


async def test_database_stopped_for_20_seconds_under_load(
    deployed: Deployment,
) -> None:
    async def stop_20s() -> list[Probe]:
        await asyncio.to_thread(deployed.cluster.stop)
        done = asyncio.Event()
        probing = asyncio.create_task(_down_probes(deployed, done))
        await asyncio.sleep(20)
        done.set()
        probes = await probing
        await asyncio.to_thread(deployed.cluster.start)
        return probes

    probes = await _outage_scenario(deployed, "st", stop_20s)
    assert len(probes) >= 20
    for probe in probes:
        if probe.what == "readyz":
            assert probe.status == 503, probe
            assert json.loads(probe.body) == {"status": "unavailable"}
            continue
        # Fast, coded, retryable; no stack trace, SQL or driver name.
        assert probe.status == 503, probe
        assert probe.headers.get("retry-after"), probe
        (error,) = json.loads(probe.body)["errors"]
        assert error["extensions"]["code"] == "UNAVAILABLE", probe
        assert probe.seconds < REQUEST_TIMEOUT_SECONDS, probe
        assert not any(leak in probe.body for leak in LEAKS), probe
    # Nothing that was refused while it was down was written.
    async with deployed.db.read() as session:
        written = await session.scalar(
            select(func.count())
            .select_from(UsageRecord)
            .where(UsageRecord.external_id.like("down-%"))
        )
    assert written == 0


async def _outage_scenario(
    deployed: Deployment,
    run_id: str,
    outage: Callable[[], Awaitable[list[Probe]]],
) -> list[Probe]:
    """The mixed load, `outage()` in its middle, recovery, and the ledger checks.

    Senders retry failed calls, except a share of new-record calls that they
    abandon (to check those were written all or nothing).
    """
    pids = deployed.api_pids()
    load = deployed.load(run_id, abandon=0.3)
    subscribers: list[Subscriber] = []
    try:
        await load.setup()
        subscribers = await _subscribers(deployed, load)
        await live_probe(load, subscribers)
        stop = asyncio.Event()
        running = asyncio.create_task(load.run(stop))
        await asyncio.sleep(3)
        began = time.time()
        probes = await outage()
        await _ready_again(deployed)
        # The live feed is back on every process (LISTEN reconnected).
        recovered = await live_probe(load, subscribers, within=30)
        await asyncio.sleep(4)
        stop.set()
        await running
        await load.wait_jobs(load.jobs, within=120)
        await asyncio.sleep(0.5)  # the last events in flight
        await _check_after_outage(deployed, load, subscribers, began, recovered)
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        await load.aclose()
    # No process restarted: the same API processes, both workers running.
    assert deployed.api_pids() == pids
    assert all(w.process.returncode is None for w in deployed.workers)
    return probes


async def _check_after_outage(
    deployed: Deployment,
    load: MixedLoad,
    subscribers: list[Subscriber],
    began: float,
    recovered: float,
) -> None:
    # The outage was felt, and failed calls failed fast with the coded,
    # retryable error; the service logged it without a traceback.
    assert load.failures
    errors = [
        line
        for log in deployed.logs[1:]
        for line in log.read_text().splitlines()
        if '"level": "ERROR"' in line or "Traceback" in line
    ]
    assert not errors, errors[:3]
    codes = load.failure_codes()
    assert set(codes) <= {"UNAVAILABLE"}, (codes, _first_failures(load))
    for failure in load.failures:
        assert failure.status == 503, failure
        assert failure.seconds < REQUEST_TIMEOUT_SECONDS, failure
        assert not any(leak in failure.body for leak in LEAKS), failure
    assert not load.id_mismatches

    # Every acknowledged record is stored with its credits; an abandoned call
    # is stored whole or not at all (its commit may have outrun the outage).
    jobs = await job_records(deployed.db, load.jobs)
    held = await stored(deployed.db, load.tenants)
    webhook_keys = set(held.records) - set(jobs.values())
    expected = set(load.acked)
    for group in load.abandoned:
        present = [key in held.records for key in group]
        assert all(present) or not any(present), group
        if all(present):
            expected |= set(group)
    assert webhook_keys == expected
    for key, acked in load.acked.items():
        assert held.records[key][1] == acked.credits, key
    await assert_api_totals(load, held.totals(load.tenants))

    # Every job ran and was billed once, also those in flight at the outage.
    await assert_jobs_billed_once(deployed)

    # Live subscribers stayed connected and heard every record committed
    # before the outage and after the feed recovered (events committed while
    # a listener reconnects are lost: delivery is at most once).
    for subscriber in subscribers:
        assert subscriber.closed is None, subscriber.closed
        assert not subscriber.errors, subscriber.errors[:3]
        assert max(subscriber.seen.values()) == 1
        assert set(subscriber.seen) <= set(held.records)
        must = {
            key
            for key, (_, _, received) in held.records.items()
            if received.timestamp() < began - SETTLE_SECONDS
            or received.timestamp() > recovered
        }
        assert must <= set(subscriber.seen), (
            subscriber.pid,
            len(must - set(subscriber.seen)),
        )


def _first_failures(load: MixedLoad) -> list[Failure]:
    seen: dict[str, Failure] = {}
    for failure in load.failures:
        seen.setdefault(failure.code, failure)
    return list(seen.values())


async def _ready_again(deployed: Deployment, within: float = 30.0) -> None:
    """Wait until /readyz answers 200 again."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=deployed.url, timeout=5) as http:
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "/readyz not ready again"
            await asyncio.sleep(0.1)


async def _down_probes(deployed: Deployment, done: asyncio.Event) -> list[Probe]:
    """Until `done`: /readyz, a keyed mutation, a signed webhook and a query."""
    probes: list[Probe] = []
    keyed = {"Authorization": f"Bearer {deployed.key}"}
    async with httpx.AsyncClient(
        base_url=deployed.url, timeout=REQUEST_TIMEOUT_SECONDS + 5
    ) as http:

        async def probe(what: str, request: Awaitable[httpx.Response]) -> None:
            started = time.monotonic()
            response = await request
            probes.append(
                Probe(
                    what,
                    response.status_code,
                    response.text,
                    response.headers,
                    time.monotonic() - started,
                )
            )

        n = 0
        while not done.is_set():
            n += 1
            body = json.dumps(
                {"query": DOWN_MUTATION, "variables": {"s": f"down-{n}"}}
            ).encode()
            signed = {"X-Webhook-Signature": sign(WEBHOOK_SECRET, body)}
            json_type = {"Content-Type": "application/json"}
            await probe("readyz", http.get("/readyz"))
            await probe(
                "keyed", http.post("/graphql", content=body, headers=keyed | json_type)
            )
            await probe(
                "signed",
                http.post("/graphql", content=body, headers=signed | json_type),
            )
            await probe(
                "query",
                http.post("/graphql", json={"query": DOWN_QUERY}, headers=keyed),
            )
            await asyncio.sleep(0.5)
    return probes


DOWN_MUTATION = """
mutation($s: ID!) {
  recordStreamUsage(input: {interactionId: "down", streamId: $s, credits: "1"}) { id }
}"""
DOWN_QUERY = "{ tenants(first: 5) { nodes { id credits { total } } } }"
