"""Issue 10 item 7: usage and interactions are dated between 2000 and a day from now.

Records dated in year 1 or 9999 used to be accepted, and then widened every
report that spanned them. Out-of-window times are BAD_USER_INPUT and write
nothing, in single mutations and in batches (which name the record's index).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from service.db.models import Interaction, UsageRecord
from service.db.session import Database
from tests.auth.helpers import call, data, new_key, only_code

pytestmark = pytest.mark.asyncio

RECORD = """
mutation($at: DateTime) {
  recordStreamUsage(input: {interactionId: "win-1", streamId: "s-win",
                            credits: "1", createdAt: $at}) { id createdAt }
}"""
REGISTER = """
mutation($at: DateTime) {
  registerInteraction(input: {interactionId: "win-2", tenantId: "t-win",
                              userId: "u", createdAt: $at}) { id createdAt }
}"""
INGEST = """
mutation($at: DateTime) {
  ingestUsage(records: [
    {source: DOCUMENT, interactionId: "win-3", externalId: "d-ok", credits: "1"},
    {source: DOCUMENT, interactionId: "win-3", externalId: "d-bad", credits: "1",
     createdAt: $at}]) { accepted }
}"""


def _outside() -> list[str]:
    soon = datetime.now(UTC) + timedelta(days=2)
    return [
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        soon.isoformat(),
        "9999-12-31T00:00:00Z",
    ]


async def _stored(db: Database) -> tuple[int, int]:
    async with db.read() as session:
        records = await session.scalar(
            select(func.count())
            .select_from(UsageRecord)
            .where(UsageRecord.interaction_id.in_(["win-1", "win-3"]))
        )
        interactions = await session.scalar(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.id == "win-2")
        )
    return int(records or 0), int(interactions or 0)


async def test_times_outside_the_window_are_refused(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    for at in _outside():
        for operation in (RECORD, REGISTER):
            body = await call(api, operation, {"at": at}, key=key)
            assert only_code(body) == "BAD_USER_INPUT", (at, body)
            assert body["errors"][0]["extensions"]["field"] == "input.createdAt"
        body = await call(api, INGEST, {"at": at}, key=key)
        assert only_code(body) == "BAD_USER_INPUT", (at, body)
        assert body["errors"][0]["extensions"]["field"] == "records[1].createdAt"
    assert await _stored(db) == (0, 0)


async def test_times_inside_the_window_are_stored(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    edge = "2000-01-01T00:00:00Z"
    recorded = await data(api, RECORD, {"at": edge}, key=key)
    assert recorded["recordStreamUsage"]["createdAt"] == edge
    soon = (datetime.now(UTC) + timedelta(hours=23)).isoformat()
    registered = await data(api, REGISTER, {"at": soon}, key=key)
    assert registered["registerInteraction"]["id"] == "win-2"
    assert (await data(api, INGEST, {"at": edge}, key=key))["ingestUsage"] == {
        "accepted": 2
    }
