"""Prometheus metrics: every series of contract.md's Operations section and more.

Any module may import these objects and count, e.g.
`WEBHOOK_DELIVERIES.labels(outcome="succeeded").inc()`. Labels take values from
small fixed sets only (sources, outcomes, operation types, job kinds, route
templates, Corti operations): never a tenant, user, interaction or key id.

With `serve --workers N` every API process writes its values to files under
PROMETHEUS_MULTIPROC_DIR (set up by `serve`, prometheus-client's multiprocess
mode) and `/metrics`, answered by any one process, sums them all. Gauges use
the `livesum` mode: the sum over live processes.

`ledger_jobs`, the queued jobs' age and `ledger_database_up` describe the
database rather than a process: they are read from it when scraped
(`database_metrics`), so every process reports the same figures (use `max`,
not `sum`, across scraped targets).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger("service.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# --- the contract's series ----------------------------------------------------

USAGE_RECORDS = Counter(
    "ledger_usage_records_total",
    "Usage records received, by source and outcome (accepted, duplicate, conflict, "
    "rejected). A refused batch counts each of its records.",
    ["source", "outcome"],
)
CREDITS_RECORDED = Counter(
    "ledger_credits_recorded_total",
    "Credits of newly stored usage records, by source.",
    ["source"],
)
GRAPHQL_OPERATIONS = Counter(
    "ledger_graphql_operations_total",
    "GraphQL operations, by type (query, mutation, subscription) and outcome "
    "(ok, error).",
    ["type", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "ledger_graphql_duration_seconds",
    "Time to run a GraphQL operation (parse, validate, execute), by type.",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOBS_NAME = "ledger_jobs"  # a gauge read from the database, see database_metrics
JOB_ATTEMPTS = Counter(
    "ledger_job_attempts_total",
    "Job attempts the worker ended, by kind and outcome (succeeded, retried, failed).",
    ["kind", "outcome"],
)
CORTI_REQUESTS = Counter(
    "ledger_corti_requests_total",
    "HTTP and websocket requests to Corti, by operation (method and path "
    "template) and status (HTTP status or `error`).",
    ["operation", "status"],
)
WEBHOOK_DELIVERIES = Counter(
    "ledger_webhook_deliveries_total",
    "Outgoing webhook delivery attempts, by outcome (succeeded, retried, failed).",
    ["outcome"],
)

# --- what else an operator wants ------------------------------------------------

HTTP_DURATION = Histogram(
    "ledger_http_request_duration_seconds",
    "HTTP requests by route template (not the raw path), method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DB_CONNECTIONS_IN_USE = Gauge(
    "ledger_db_connections_in_use",
    "Database connections checked out of the pool (summed over live processes).",
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "ledger_db_pool_capacity",
    "Most connections the pool may hold (pool size + overflow; summed over live "
    "processes).",
    multiprocess_mode="livesum",
)
LIVE_SUBSCRIBERS = Gauge(
    "ledger_live_subscribers",
    "Open usageRecorded subscriptions (summed over live API processes).",
    multiprocess_mode="livesum",
)
JOB_OLDEST_AGE_NAME = "ledger_job_oldest_queued_age_seconds"
DATABASE_UP_NAME = "ledger_database_up"

# Path segments kept in a Corti operation label; any other segment is an id.
CORTI_WORDS = frozenset(
    {
        "v2",
        "audio-bridge",
        "interactions",
        "recordings",
        "transcripts",
        "documents",
        "facts",
        "status",
        "streams",
        "realms",
        "protocol",
        "openid-connect",
        "token",
        "tools",
        "extract-facts",
        "coding",
        "transcribe",
    }
)
ROUTE_OTHER = "other"  # unmatched paths: one label value, not one per path
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def corti_operation(method: str, path: str) -> str:
    """`POST /v2/interactions/{id}/transcripts/`: bounded, without ids."""
    parts = [p if not p or p in CORTI_WORDS else "{id}" for p in path.split("/")]
    return f"{method} {'/'.join(parts) if path else '/'}"


def corti_request(method: str, path: str, status: int | str) -> None:
    """Count one request to Corti (`status`: the HTTP status, or `error`)."""
    CORTI_REQUESTS.labels(
        operation=corti_operation(method, path), status=str(status)
    ).inc()


def multiprocess_enabled() -> bool:
    """Whether this process writes its values for a multiprocess `/metrics`."""
    return bool(os.environ.get(MULTIPROC_ENV))


def process_metrics() -> bytes:
    """The text exposition of this process's (or all API processes') series."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def mark_process_dead() -> None:
    """Drop this process's live gauges from the shared directory (on exit)."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# --- counting usage records, once their transaction commits ---------------------

_PENDING = "metrics_pending"


def on_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run `action` when the session's transaction commits; drop it on rollback."""
    session.sync_session.info.setdefault(_PENDING, []).append(action)


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    for action in session.info.pop(_PENDING, ()):
        action()


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def count_stored(
    session: AsyncSession, batch_sources: Sequence[str], new: Sequence[Any]
) -> None:
    """Count a stored batch: `new` are the records it inserted (each once)."""
    accepted: dict[str, int] = {}
    credits: dict[str, float] = {}
    for record in new:
        accepted[record.source] = accepted.get(record.source, 0) + 1
        credits[record.source] = credits.get(record.source, 0.0) + float(record.credits)
    received: dict[str, int] = {}
    for source in batch_sources:
        received[source] = received.get(source, 0) + 1

    def count() -> None:
        for source, total in received.items():
            stored = accepted.get(source, 0)
            if stored:
                USAGE_RECORDS.labels(source=source, outcome="accepted").inc(stored)
                CREDITS_RECORDED.labels(source=source).inc(credits[source])
            if total > stored:
                USAGE_RECORDS.labels(source=source, outcome="duplicate").inc(
                    total - stored
                )

    on_commit(session, count)


def count_refused(batch_sources: Iterable[str], outcome: str) -> None:
    """Count the records of a refused call (`conflict` or `rejected`)."""
    received: dict[str, int] = {}
    for source in batch_sources:
        received[source] = received.get(source, 0) + 1
    for source, total in received.items():
        USAGE_RECORDS.labels(source=source, outcome=outcome).inc(total)


# --- database pool ------------------------------------------------------------


def watch_pool(engine: AsyncEngine) -> None:
    """Keep the pool gauges of this process up to date for `engine`."""
    pool = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size):
        DB_POOL_CAPACITY.inc(size() + max(0, overflow))

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(*_args: Any) -> None:
        DB_CONNECTIONS_IN_USE.inc()

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(*_args: Any) -> None:
        DB_CONNECTIONS_IN_USE.dec()


def unwatch_pool(engine: AsyncEngine) -> None:
    """Take `engine`'s capacity out of this process's gauge (on dispose)."""
    pool = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    if callable(size):
        DB_POOL_CAPACITY.dec(size() + max(0, getattr(pool, "_max_overflow", 0)))


# --- series read from the database when scraped ---------------------------------


class _Families(Collector):
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self.families


async def database_metrics(
    db: Any, kinds: Iterable[str] = (), *, within: float = 2.0
) -> bytes:
    """`ledger_jobs`, the oldest queued job's age per kind, `ledger_database_up`.

    `db` is a `service.db.session.Database`. A database that does not answer
    within `within` seconds gives `ledger_database_up 0` and no job series.
    """
    from service.db.base import utcnow
    from service.db.models import Job

    up = GaugeMetricFamily(
        DATABASE_UP_NAME, "1 when the database answered this scrape, else 0."
    )
    families = [up]
    try:
        async with asyncio.timeout(within), db.read() as session:
            rows = (
                await session.execute(
                    select(Job.kind, Job.status, func.count(), func.min(Job.run_after))
                    .where(Job.status.in_(("QUEUED", "RUNNING")))
                    .group_by(Job.kind, Job.status)
                )
            ).all()
    except Exception:  # noqa: BLE001 - any failure: report the database as down
        log.warning("metrics: the database did not answer")
        up.add_metric([], 0)
        return generate_latest(_registry(families))
    up.add_metric([], 1)
    jobs = GaugeMetricFamily(
        JOBS_NAME,
        "Jobs in the database by kind and status (queued, running).",
        labels=["kind", "status"],
    )
    age = GaugeMetricFamily(
        JOB_OLDEST_AGE_NAME,
        "Seconds the oldest due queued job of each kind has been waiting.",
        labels=["kind"],
    )
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[str, datetime] = {}
    for kind, status, count, first_due in rows:
        counts[(kind, status.lower())] = count
        if status == "QUEUED" and first_due is not None:
            oldest[kind] = first_due
    now = utcnow()
    for kind in sorted(set(kinds) | {kind for kind, _ in counts}):
        for status in ("queued", "running"):
            jobs.add_metric([kind, status], counts.get((kind, status), 0))
        due = oldest.get(kind)
        age.add_metric([kind], max(0.0, (now - due).total_seconds()) if due else 0.0)
    families += [jobs, age]
    return generate_latest(_registry(families))


def _registry(families: list[GaugeMetricFamily]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return registry
