"""The live feed's subscription to domain events."""

from __future__ import annotations

from service.db.session import Database
from service.events import UsageRecorded, after_commit, in_transaction
from service.live.feed import notify_in_transaction, publish_here
from service.uow import UnitOfWork


@in_transaction(UsageRecorded)
async def notify_usage(event: UsageRecorded, uow: UnitOfWork) -> None:
    """PostgreSQL: NOTIFY the new usage in the writing transaction (sent at commit).

    If PostgreSQL's notification queue is full (listeners stalled for a long
    time), the commit fails and the write is refused with a retryable error, so
    the sender retries it: records are never stored unannounced to a listener
    that is connected.
    """
    if uow.db.dialect == "postgresql":
        await notify_in_transaction(event.records, uow.session)


@after_commit(UsageRecorded)
async def announce_usage(event: UsageRecorded, db: Database) -> None:
    """SQLite: announce newly committed usage to this process's subscribers."""
    if db.dialect != "postgresql":
        publish_here(event.records, db)
