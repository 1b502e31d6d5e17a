"""The live feed's subscription to domain events."""

from __future__ import annotations

from service.db.session import Database
from service.events import UsageRecorded, after_commit
from service.live.feed import publish_usage


@after_commit(UsageRecorded)
async def announce_usage(event: UsageRecorded, db: Database) -> None:
    """Announce newly committed usage to live subscribers (never raises)."""
    await publish_usage(event.records, db)
