"""The provisional credits of a running stream or dictation (`Job.provisionalCredits`).

`delta_usage` is Corti's running total since the session started, not an
increment, so only the latest figure is kept, in `job.state
["provisional_credits"]`. Saving each one would write the job row once per
second of audio; the saver coalesces them into at most one write per
`every` seconds, the latest figure always written last. The final `usage`
becomes the usage record and the figure is no longer shown once the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError

from service.jobs.queue import LeaseLost
from service.jobs.registry import JobContext

log = logging.getLogger("service.jobs")

SAVE_EVERY_SECONDS = 0.5


class ProvisionalSaver:
    """Saves the latest `delta_usage` figure of a session into the job's state."""

    def __init__(self, run: JobContext, *, every: float = SAVE_EVERY_SECONDS) -> None:
        self._run = run
        self._every = every
        self._latest: Decimal | None = None
        self._saved: Decimal | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def offer(self, credits: Decimal) -> None:
        """Take a new running total (called for each `delta_usage`)."""
        self._latest = credits
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop saving (the session is over); waits for a save in progress.

        A failed provisional save (database error, lost lease) is logged and
        ends the saving; the session's own saves report such failures.
        """
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping.is_set():
                return
            figure = self._latest
            if figure is not None and figure != self._saved:
                try:
                    await self._run.save(provisional_credits=str(figure))
                except (SQLAlchemyError, OSError, LeaseLost) as error:
                    # Only a display figure: never let it cost the session (and
                    # its final usage) that is still running.
                    log.warning(
                        "job %s: stopped saving provisional credits: %s",
                        self._run.job.id,
                        error,
                    )
                    return
                self._saved = figure
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._every)
