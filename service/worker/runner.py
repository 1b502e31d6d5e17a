"""The worker loop: claim jobs, run up to `concurrency` at once, renew leases.

Plumbing only: what a job does is its registered kind (service/jobs/registry.py;
the Corti kinds and their finishing are in service/jobs/). Each loop also
enqueues the scheduled jobs that are due (service/jobs/schedule.py). One
asyncio task per running job, so a process keeps `worker_concurrency`
Corti calls in flight. A single renewal task extends every held lease each
third of the lease time and cancels attempts whose lease another worker took.
`stop()` (SIGTERM) stops claiming, gives running jobs `worker_shutdown_seconds`
to finish, then cancels the rest and hands them back to the queue at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from itertools import chain, repeat
from typing import Any

from service import domains
from service.config import Settings
from service.corti import CortiClient
from service.db.base import utcnow
from service.db.errors import database_unavailable, describe
from service.db.session import Database
from service.errors import AppError
from service.jobs import queue, registry
from service.jobs.queue import ClaimedJob, LeaseLost
from service.jobs.registry import (
    Completion,
    Ending,
    JobContext,
    JobFailed,
    KindSpec,
    RetryLater,
)
from service.jobs.schedule import enqueue_due, next_due
from service.observability import tracing
from service.observability.metrics import JOB_ATTEMPTS
from service.uow import unit_of_work

log = logging.getLogger("service.worker")

# Waits between tries of a job's finishing transaction when the database fails
# (the last repeats for about a lease, see Worker._commit_delays).
COMMIT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


def default_worker_id() -> str:
    """host:pid:random, unique per worker process."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs queued jobs until `stop()`; see the module docstring."""

    def __init__(
        self,
        db: Database,
        corti: CortiClient,
        settings: Settings,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
    ) -> None:
        domains.load()
        self.db = db
        self.corti = corti
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = max(1, concurrency or settings.worker_concurrency)
        self.lease_seconds = float(settings.job_lease_seconds)
        self.finished = 0
        self._running: dict[uuid.UUID, tuple[ClaimedJob, asyncio.Task[None]]] = {}
        self._finishing: set[uuid.UUID] = set()
        self._next_due: dict[str, datetime] = {}
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def running(self) -> int:
        """How many jobs this worker is running now."""
        return len(self._running)

    def stop(self) -> None:
        """Stop claiming; `run()` then finishes or releases what it holds."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and run jobs until `stop()`."""
        log.info(
            "worker %s started (concurrency %d, lease %gs)",
            self.worker_id,
            self.concurrency,
            self.lease_seconds,
        )
        renewer = asyncio.create_task(self._renew_leases())
        try:
            while not self._stop.is_set():
                if registry.SCHEDULES:
                    await self.enqueue_scheduled()
                free = self.concurrency - len(self._running)
                claimed: list[ClaimedJob] = []
                if free > 0:
                    claimed = await self._claim(free)
                    for job in claimed:
                        self._start(job)
                if claimed and len(claimed) == free:
                    continue  # maybe more waiting: claim again once a slot frees
                self._wake.clear()
                timeout = self.settings.worker_poll_seconds if free > 0 else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            await self._drain()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            log.info("worker %s stopped", self.worker_id)

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        try:
            return await queue.claim(
                self.db,
                self.worker_id,
                limit=limit,
                lease_seconds=self.lease_seconds,
                kinds=tuple(registry.KINDS),
            )
        except Exception as error:  # noqa: BLE001 - logged by _log_failure
            _log_failure("claiming jobs failed; trying again", error)
            return []

    def _start(self, job: ClaimedJob) -> None:
        task = asyncio.create_task(self._execute(job), name=f"job {job.id}")
        self._running[job.id] = (job, task)

        def done(_task: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            self._finishing.discard(job.id)
            self._wake.set()

        task.add_done_callback(done)

    async def _renew_leases(self) -> None:
        interval = max(0.1, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            held = [job for job, _ in self._running.values()]
            if not held:
                continue
            try:
                kept = await queue.renew(
                    self.db, [job.lease for job in held], self.lease_seconds
                )
            except Exception as error:  # noqa: BLE001 - logged by _log_failure
                _log_failure("renewing leases failed; trying again", error)
                continue
            for job in held:
                entry = self._running.get(job.id)
                if job.id in kept or entry is None or job.id in self._finishing:
                    continue
                log.warning("job %s: lease lost to another worker; stopping", job.id)
                entry[1].cancel()

    async def _drain(self) -> None:
        """On stop: let running jobs finish for a while, then release them."""
        if not self._running:
            return
        entries = list(self._running.values())
        log.info("waiting for %d running job(s) to finish", len(entries))
        _, pending = await asyncio.wait(
            [task for _, task in entries],
            timeout=self.settings.worker_shutdown_seconds,
        )
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for job, task in entries:
            if task in pending:
                try:
                    await queue.release(self.db, job.lease, job.state)
                    log.info("job %s released for another worker", job.id)
                except LeaseLost:
                    pass
                except Exception:
                    log.exception(
                        "job %s: release failed; its lease will run out", job.id
                    )

    # --- scheduled jobs -----------------------------------------------------------

    async def enqueue_scheduled(self, now: datetime | None = None) -> list[str]:
        """Enqueue the due scheduled jobs no worker enqueued yet; their names."""
        now = now or utcnow()
        enqueued: list[str] = []
        for schedule in list(registry.SCHEDULES.values()):
            if now < self._next_due.get(schedule.name, now):
                continue
            try:
                if await enqueue_due(self.db, schedule, now):
                    enqueued.append(schedule.name)
            except Exception as error:  # noqa: BLE001 - logged by _log_failure
                _log_failure(f"scheduling {schedule.name} failed; trying again", error)
                continue
            self._next_due[schedule.name] = next_due(schedule, now)
        return enqueued

    # --- one attempt ------------------------------------------------------------

    async def _execute(self, job: ClaimedJob) -> None:
        with tracing.job_span(job.kind, job.id, job.lease.attempt, job.trace_context):
            await self._attempt(job)

    async def _attempt(self, job: ClaimedJob) -> None:
        spec = registry.KINDS.get(job.kind)
        if spec is None:  # claimed only registered kinds; unregistered since
            await self._end(job, f"no job kind {job.kind!r} in this worker")
            return
        ctx = JobContext(
            job, self.db, self.corti, self._max_attempts(spec), self.settings
        )
        try:
            result = await spec.run(ctx)
        except LeaseLost:
            log.warning("job %s: lease lost; another worker has it", job.id)
            return
        except JobFailed as error:
            await self._end(job, str(error))
            return
        except RetryLater as error:
            await self._retry(job, spec, error.reason, error.note, error.delay)
            return
        except Exception as error:
            if database_unavailable(error):
                _log_failure(f"job {job.id}: attempt interrupted", error)
                await self._retry(job, spec, "the database was unreachable")
                return
            log.exception("job %s: unexpected error", job.id)
            await self._retry(job, spec, f"internal error ({type(error).__name__})")
            return
        await self._complete(ctx, result, spec)

    def _max_attempts(self, spec: KindSpec) -> int:
        return spec.max_attempts or self.settings.job_max_attempts

    async def _complete(
        self, ctx: JobContext, result: Completion | None, spec: KindSpec
    ) -> None:
        """Write the job's result and end it, in one unit of work.

        A database failure here is retried in place for a while: a Corti
        job's credits exist only in memory now, and a stream cannot be looked
        up at Corti again, so giving the job back would mean streaming (and
        paying) twice.
        """
        job = ctx.job
        self._finishing.add(job.id)
        for delay in self._commit_delays():
            try:
                async with unit_of_work(self.db) as uow:
                    ending = await result.write(uow, ctx) if result else Ending()
                    await queue.finish(
                        uow,
                        job.lease,
                        failure=ending.failure,
                        state=job.state,
                        usage_record_id=ending.usage_record_id,
                        interaction_id=ending.interaction_id,
                    )
            except LeaseLost:
                log.warning("job %s: lease lost before it could finish", job.id)
                return
            except AppError as error:
                await self._end(job, f"the ledger refused the result: {error.message}")
                return
            except Exception as error:  # noqa: BLE001 - logged by _log_failure
                _log_failure(f"job {job.id}: could not record its result", error)
                if delay is None:
                    await self._retry(job, spec, "could not record the result")
                    return
                await asyncio.sleep(delay)
                continue
            break
        self.finished += 1
        JOB_ATTEMPTS.labels(kind=job.kind, outcome="succeeded").inc()
        log.info("job %s (%s) finished", job.id, job.kind)

    def _commit_delays(self) -> Iterator[float | None]:
        """Waits between tries of a finishing transaction, then None (give up).

        Growing, then every 8 s, for about one lease: within its lease the job
        is still ours (the renewal task extends it once the database is back),
        and past it another worker's claim fences this one out (LeaseLost).
        """
        waited = 0.0
        for delay in chain(COMMIT_RETRY_DELAYS, repeat(COMMIT_RETRY_DELAYS[-1])):
            if waited >= self.lease_seconds:
                break
            yield delay
            waited += delay
        yield None

    async def _retry(
        self,
        job: ClaimedJob,
        spec: KindSpec,
        error: str,
        note: str = "",
        delay: float | None = None,
    ) -> None:
        attempt = job.lease.attempt
        if attempt >= self._max_attempts(spec):
            await self._end(job, f"gave up after {attempt} attempts: {error}{note}")
            return
        if delay is None:
            delay = queue.backoff(
                attempt,
                base=spec.backoff_base or self.settings.job_retry_base_seconds,
                cap=spec.backoff_cap or self.settings.job_retry_max_seconds,
            )
        JOB_ATTEMPTS.labels(kind=job.kind, outcome="retried").inc()
        log.warning(
            "job %s: attempt %d failed (%s); retrying in %.2fs",
            job.id,
            attempt,
            error,
            delay,
        )
        await self._write(
            lambda: queue.retry_later(self.db, job.lease, error, job.state, delay)
        )

    async def _end(self, job: ClaimedJob, error: str) -> None:
        JOB_ATTEMPTS.labels(kind=job.kind, outcome="failed").inc()
        log.warning("job %s failed: %s", job.id, error)
        await self._write(lambda: queue.fail(self.db, job.lease, error, job.state))

    async def _write(self, write: Callable[[], Awaitable[Any]]) -> None:
        """A queue update; tried again while the database is unreachable.

        Giving up only means the lease runs out and the job runs again later.
        """
        for delay in self._commit_delays():
            try:
                await write()
            except LeaseLost:
                log.warning("lease lost before the job's outcome was saved")
            except Exception as error:  # noqa: BLE001 - logged by _log_failure
                if delay is not None and database_unavailable(error):
                    _log_failure("saving a job's outcome failed; trying again", error)
                    await asyncio.sleep(delay)
                    continue
                _log_failure(
                    "saving a job's outcome failed; its lease will run out", error
                )
            return


def _log_failure(message: str, error: BaseException) -> None:
    """A traceback for bugs; one line while the database is unreachable."""
    if database_unavailable(error):
        log.warning("%s (database unavailable: %s)", message, describe(error))
    else:
        log.error(message, exc_info=error)
