"""Job kinds and schedules, declared next to the domain that owns them.

    @job_kind("webhook.deliver", max_attempts=8, backoff_base=2.0, backoff_cap=600.0)
    async def deliver(ctx: JobContext) -> None:
        ...   # raise RetryLater(reason) to retry with backoff, JobFailed(reason) to fail

    @scheduled("budgets.sweep", every=timedelta(minutes=5))
    async def sweep(ctx: JobContext) -> None: ...

A job is enqueued with `UnitOfWork.enqueue(kind, payload, ...)` in the writing
transaction (the outbox) and run by any worker (service/worker) with leases,
fenced writes, retries with capped exponential backoff and jitter, and
hand-back on shutdown, whatever its kind. A kind's function returns None
(the job then ends SUCCEEDED) or a `Completion`, whose `write(uow, ctx)` runs
in the transaction that ends the job (the Corti kinds record their usage
there: service/jobs/finish.py). Options left out fall back to the settings
(`JOB_MAX_ATTEMPTS`, `JOB_RETRY_BASE_SECONDS`, `JOB_RETRY_MAX_SECONDS`).

A scheduled job is enqueued by the workers once per period (due times are
multiples of `every` since the Unix epoch, UTC): see service/jobs/schedule.py.
Modules that declare kinds are listed in service/domains.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from service.config import Settings
from service.db.session import Database
from service.jobs.queue import ClaimedJob, save_state

if TYPE_CHECKING:
    from service.corti import CortiClient
    from service.uow import UnitOfWork


class JobFailed(Exception):
    """A job gives up for good; the message becomes the job's error."""


class RetryLater(Exception):
    """This attempt failed; try again after a backoff (or give up at the limit).

    `note` is added to the error only when the job gives up. `delay` (seconds)
    replaces the backoff when given.
    """

    def __init__(self, reason: str, *, note: str = "", delay: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.note = note
        self.delay = delay


@dataclass(frozen=True)
class Ending:
    """How a job ends, written with it (`failure` ends it FAILED)."""

    failure: str | None = None
    usage_record_id: uuid.UUID | None = None
    interaction_id: str | None = None


class Completion(Protocol):
    """A job's result, written in the transaction that ends the job."""

    async def write(self, uow: UnitOfWork, ctx: JobContext) -> Ending: ...


@dataclass
class JobContext:
    """One attempt at a job: the claimed job, the worker's clients, progress saving."""

    job: ClaimedJob
    db: Database
    corti: CortiClient
    max_attempts: int
    # The worker's settings (None: a caller that runs a kind by hand).
    settings: Settings | None = None

    @property
    def id(self) -> uuid.UUID:
        """The job id."""
        return self.job.id

    @property
    def kind(self) -> str:
        """The job's kind."""
        return self.job.kind

    @property
    def payload(self) -> dict[str, Any]:
        """What the job was enqueued with."""
        return self.job.payload

    @property
    def state(self) -> dict[str, Any]:
        """The job's saved progress."""
        return self.job.state

    @property
    def attempt(self) -> int:
        """This attempt's number, from 1."""
        return self.job.lease.attempt

    @property
    def interaction_id(self) -> str:
        """The Corti interaction the job works on."""
        if self.job.interaction_id is None:
            raise JobFailed("the job has no interaction")
        return self.job.interaction_id

    async def save(self, **changes: Any) -> None:
        """Record progress in job.state (fenced by the lease) before going on."""
        self.job.state.update(changes)
        await save_state(self.db, self.job.lease, self.job.state)

    def may_start(self, what: str) -> None:
        """Refuse new work once the job ran out of attempts.

        An attempt past the limit (its predecessors' workers died) still
        recovers what earlier attempts made, but starts nothing new.
        """
        if self.attempt > self.max_attempts:
            raise JobFailed(
                f"gave up after {self.max_attempts} attempts, before {what}"
            )


Run = Callable[[JobContext], Awaitable["Completion | None"]]


@dataclass(frozen=True)
class KindSpec:
    """A registered job kind; None options fall back to the settings."""

    name: str
    run: Run
    max_attempts: int | None = None
    backoff_base: float | None = None
    backoff_cap: float | None = None


@dataclass(frozen=True)
class Schedule:
    """A job kind enqueued once per `every`."""

    name: str
    every: timedelta


KINDS: dict[str, KindSpec] = {}
SCHEDULES: dict[str, Schedule] = {}


def job_kind(
    name: str,
    *,
    max_attempts: int | None = None,
    backoff_base: float | None = None,
    backoff_cap: float | None = None,
) -> Callable[[Run], Run]:
    """Register `async def run(ctx) -> Completion | None` as job kind `name`."""
    if len(name) > 32:
        raise ValueError(f"job kind {name!r} is longer than jobs.kind (32)")

    def register(run: Run) -> Run:
        if name in KINDS and KINDS[name].run is not run:
            raise ValueError(f"job kind {name!r} is registered twice")
        KINDS[name] = KindSpec(name, run, max_attempts, backoff_base, backoff_cap)
        return run

    return register


def scheduled(name: str, *, every: timedelta, **options: Any) -> Callable[[Run], Run]:
    """Register a job kind that the workers enqueue once per `every`."""
    if every <= timedelta(0):
        raise ValueError("every must be positive")

    def register(run: Run) -> Run:
        job_kind(name, **options)(run)
        SCHEDULES[name] = Schedule(name, every)
        return run

    return register


def forget(name: str) -> None:
    """Unregister a kind and its schedule (tests register their own)."""
    KINDS.pop(name, None)
    SCHEDULES.pop(name, None)
