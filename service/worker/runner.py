"""The worker loop: claim jobs, run up to `concurrency` at once, renew leases.

One asyncio task per running job, so a process keeps `worker_concurrency`
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
from collections.abc import Awaitable
from typing import Any

from service import domains
from service.auth.principal import Principal, Role
from service.config import Settings
from service.corti import CortiClient, CortiError, CortiInsufficientBalance
from service.corti.exceptions import CortiOutcomeUnknown, CortiStreamRefused
from service.db.session import Database
from service.errors import AppError
from service.jobs import queue
from service.jobs.queue import ClaimedJob, LeaseLost
from service.jobs.records import Finish, JobFailed
from service.jobs.tasks import TASKS, JobRun
from service.observability.metrics import JOB_ATTEMPTS
from service.uow import unit_of_work
from service.usage.records import RecordRow
from service.usage.service import usage_service

log = logging.getLogger("service.worker")

# Waits between tries of a job's finishing transaction when the database fails.
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
            )
        except Exception:
            log.exception("claiming jobs failed; trying again")
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
            except Exception:
                log.exception("renewing leases failed; trying again")
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

    # --- one attempt ------------------------------------------------------------

    async def _execute(self, job: ClaimedJob) -> None:
        run = JobRun(job, self.db, self.corti, self.settings.job_max_attempts)
        try:
            finish = await TASKS[job.kind](run)
        except LeaseLost:
            log.warning("job %s: lease lost; another worker has it", job.id)
            return
        except JobFailed as error:
            await self._end(job, str(error))
            return
        except CortiError as error:
            await self._corti_failed(job, error)
            return
        except Exception as error:
            log.exception("job %s: unexpected error", job.id)
            await self._retry(job, f"internal error ({type(error).__name__})")
            return
        await self._complete(job, finish)

    async def _complete(self, job: ClaimedJob, finish: Finish) -> None:
        """Record the usage and end the job, in one transaction.

        A database failure here is retried in place for a while: the credits
        exist only in memory now, and a stream cannot be looked up at Corti
        again, so giving the job back would mean streaming (and paying) twice.
        """
        self._finishing.add(job.id)
        for delay in (*COMMIT_RETRY_DELAYS, None):
            try:
                await self._record(job, finish)
            except LeaseLost:
                log.warning("job %s: lease lost before it could finish", job.id)
                return
            except AppError as error:
                await self._end(job, f"the ledger refused the result: {error.message}")
                return
            except Exception:
                log.exception("job %s: could not record its result", job.id)
                if delay is None:
                    await self._retry(job, "could not record the result")
                    return
                await asyncio.sleep(delay)
                continue
            break
        self.finished += 1
        JOB_ATTEMPTS.labels(kind=job.kind.value, outcome="succeeded").inc()
        log.info("job %s (%s) finished", job.id, job.kind.value)

    async def _record(self, job: ClaimedJob, finish: Finish) -> None:
        """The finishing unit of work (its events go out after the commit)."""
        principal = Principal(role=Role.INGEST, tenant_id=job.tenant_id)
        async with unit_of_work(self.db) as uow:
            if finish.register is not None:
                await usage_service.register_interaction(
                    uow,
                    principal,
                    interaction_id=finish.register.interaction_id,
                    tenant_id=finish.register.tenant_id,
                    user_id=finish.register.user_id,
                )
            first: RecordRow | None = None
            for usage in finish.usage:
                outcome = await usage_service.record(uow, principal, usage)
                first = first or outcome.record
            await queue.finish(
                uow,
                job.lease,
                failure=finish.failure,
                state=job.state,
                usage_record_id=first.id if first is not None else None,
                interaction_id=(
                    finish.register.interaction_id if finish.register else None
                ),
            )

    async def _corti_failed(self, job: ClaimedJob, error: CortiError) -> None:
        if isinstance(error, CortiInsufficientBalance):
            await self._end(
                job, f"Corti refused for insufficient balance (429): {error.reason}"
            )
        elif isinstance(error, CortiStreamRefused):
            await self._end(job, str(error))
        elif error.retryable:
            note = ""
            if isinstance(error, CortiOutcomeUnknown):
                note = "; the call may have been billed and was not found afterwards"
            await self._retry(job, str(error), note)
        else:
            await self._end(job, str(error))

    async def _retry(self, job: ClaimedJob, error: str, note: str = "") -> None:
        attempt = job.lease.attempt
        if attempt >= self.settings.job_max_attempts:
            await self._end(job, f"gave up after {attempt} attempts: {error}{note}")
            return
        delay = queue.backoff(
            attempt,
            base=self.settings.job_retry_base_seconds,
            cap=self.settings.job_retry_max_seconds,
        )
        JOB_ATTEMPTS.labels(kind=job.kind.value, outcome="retried").inc()
        log.warning(
            "job %s: attempt %d failed (%s); retrying in %.2fs",
            job.id,
            attempt,
            error,
            delay,
        )
        await self._write(
            queue.retry_later(self.db, job.lease, error, job.state, delay)
        )

    async def _end(self, job: ClaimedJob, error: str) -> None:
        JOB_ATTEMPTS.labels(kind=job.kind.value, outcome="failed").inc()
        log.warning("job %s failed: %s", job.id, error)
        await self._write(queue.fail(self.db, job.lease, error, job.state))

    async def _write(self, write: Awaitable[Any]) -> None:
        """A queue update whose failure only means the lease will run out."""
        try:
            await write
        except LeaseLost:
            log.warning("lease lost before the job's outcome was saved")
        except Exception:
            log.exception("saving a job's outcome failed; its lease will run out")
