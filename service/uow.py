"""The unit of work: one writing transaction, its events, and its outbox.

Every write (resolvers, the worker, the CLI) runs as

    async with unit_of_work(db, principal) as uow:
        await usage_service.ingest(uow, principal, batch)   # raises UsageRecorded

On leaving the block without an error the unit of work

1. runs the in-transaction handlers of every raised event, in order (they may
   raise further events and enqueue jobs; those are handled too, until none
   are left),
2. commits,
3. then hands every event to its after-commit handlers; their errors are
   logged and never undo the commit.

On an error it rolls back and no handler of either kind runs. `enqueue` is the
outbox: the job row is inserted in this same transaction, so follow-up work is
never lost and never runs for a change that was rolled back. Units do not
nest; the SQLite write lock (service/db/session.py) is held from the start of
the block to the commit, not while after-commit handlers run.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.db.base import new_uuid, utcnow
from service.db.models import Job
from service.db.session import Database
from service.events import (
    DomainEvent,
    after_commit_handlers,
    in_transaction_handlers,
)
from service.observability import tracing

log = logging.getLogger("service.uow")


class UnitOfWork:
    """The open writing transaction of one operation; see the module docstring."""

    def __init__(
        self, db: Database, session: AsyncSession, principal: Principal | None
    ) -> None:
        self.db = db
        self.session = session
        self.principal = principal
        self._raised: list[DomainEvent] = []
        self._handled = 0

    @property
    def events(self) -> tuple[DomainEvent, ...]:
        """Every event raised so far, in order."""
        return tuple(self._raised)

    def raise_event(self, event: DomainEvent) -> None:
        """Queue `event` for its handlers (in the transaction, then after commit)."""
        self._raised.append(event)

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant_id: str | None = None,
        run_after: datetime | None = None,
        **columns: Any,
    ) -> uuid.UUID:
        """Insert a QUEUED job of `kind` in this transaction; returns its id.

        `columns` sets other `jobs` columns (`id`, `interaction_id`,
        `api_key_id`, ...); `api_key_id` defaults to the principal's key. The
        row stays in the session, so `session.get(Job, id)` costs no query.
        """
        now = utcnow()
        values: dict[str, Any] = {
            "id": new_uuid(),
            "status": "QUEUED",
            "attempts": 0,
            "state": {},
            "api_key_id": self.principal.key_id if self.principal else None,
            "created_at": now,
            "updated_at": now,
            # The request's trace, continued by the worker (tracing on only).
            "trace_context": tracing.carrier(),
            **columns,
        }
        job = Job(
            kind=kind,
            payload=payload,
            tenant_id=tenant_id,
            run_after=run_after or now,
            **values,
        )
        self.session.add(job)
        await self.session.flush()
        return job.id

    async def _run_in_transaction(self) -> None:
        # Handlers may raise more events; those are handled in turn.
        while self._handled < len(self._raised):
            event = self._raised[self._handled]
            self._handled += 1
            for handler in in_transaction_handlers(event):
                await handler(event, self)

    async def _run_after_commit(self) -> None:
        for event in self._raised:
            for handler in after_commit_handlers(event):
                try:
                    await handler(event, self.db)
                except Exception:  # the commit stands; the handler's loss
                    log.exception(
                        "after-commit handler %s failed for %s",
                        getattr(handler, "__qualname__", handler),
                        type(event).__name__,
                    )


@asynccontextmanager
async def unit_of_work(
    db: Database, principal: Principal | None = None
) -> AsyncIterator[UnitOfWork]:
    """A writing transaction that dispatches its events (see the module docstring)."""
    async with db.write() as session:
        uow = UnitOfWork(db, session, principal)
        yield uow
        await uow._run_in_transaction()
    await uow._run_after_commit()
