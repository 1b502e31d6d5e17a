"""Registering a Corti task as a job kind, with Corti's failures mapped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service.corti import CortiError, CortiInsufficientBalance
from service.corti.exceptions import CortiOutcomeUnknown, CortiStreamRefused
from service.jobs.finish import Finish
from service.jobs.records import JobKind
from service.jobs.registry import (
    Completion,
    JobContext,
    JobFailed,
    RetryLater,
    job_kind,
)

JobRun = JobContext  # the name the Corti tasks grew up with


def corti_kind(kind: JobKind) -> Callable[[Task], Task]:
    """Register a Corti task as a job kind, with Corti's failures mapped.

    429 (insufficient balance) and a refused stream config fail the job;
    retryable errors (5xx, 408, timeouts, dropped sockets) retry with backoff;
    other 4xx fail at once with Corti's detail.
    """

    def register(task: Task) -> Task:
        async def run(ctx: JobContext) -> Completion | None:
            try:
                return await task(ctx)
            except CortiInsufficientBalance as error:
                raise JobFailed(
                    f"Corti refused for insufficient balance (429): {error.reason}"
                ) from error
            except CortiStreamRefused as error:
                raise JobFailed(str(error)) from error
            except CortiError as error:
                if not error.retryable:
                    raise JobFailed(str(error)) from error
                note = ""
                if isinstance(error, CortiOutcomeUnknown):
                    note = (
                        "; the call may have been billed and was not found afterwards"
                    )
                raise RetryLater(str(error), note=note) from error

        run.__qualname__ = run.__name__ = task.__name__
        job_kind(kind.value)(run)
        return task

    return register


Task = Callable[[JobContext], Awaitable[Finish]]
