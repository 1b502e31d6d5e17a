"""service.usage.statistics: the rollups' planner statistics refreshed after
bulk writes, without waiting for autovacuum (PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from service.db.session import Database
from service.events import UsageRecorded
from service.usage import statistics
from tests.fixtures.app import GraphQLClient
from tests.fixtures.operations import INGEST, REGISTER
from tests.usage.helpers import analyzed

pytestmark = pytest.mark.asyncio
START = datetime(2026, 1, 1, tzinfo=UTC)


async def _ingest_hours(gql: GraphQLClient, hours: int) -> None:
    """`hours` records of one registered interaction, an hour apart: as many
    new rows in the hourly rollups."""
    await gql.data(REGISTER, {"i": "int-bulk", "t": "t1", "u": "u1"})
    for first in range(0, hours, 500):
        records = [
            {
                "source": "TRANSCRIPT",
                "interactionId": "int-bulk",
                "externalId": f"tr-{n}",
                "credits": "0.5",
                "createdAt": (START + timedelta(hours=n)).isoformat(),
            }
            for n in range(first, min(first + 500, hours))
        ]
        await gql.data(INGEST, {"r": records})


async def _stale_eventually(db: Database, table: str) -> list[str]:
    """analyze_stale until it finds `table` (a backend reports its writes to
    the statistics views within about a second)."""
    async with asyncio.timeout(15):
        while True:
            stale = await statistics.analyze_stale(db)
            if table in stale:
                return stale
            await asyncio.sleep(0.2)


async def test_tables_changed_by_a_tenth_are_analyzed_once(
    gql: GraphQLClient, db: Database
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite keeps no planner statistics unless asked")
    await _ingest_hours(gql, 1_200)
    stale = await _stale_eventually(db, "usage_tenant_hours")
    assert "usage_user_hours" in stale
    assert {"usage_tenant_hours", "usage_user_hours"} <= await analyzed(
        db, statistics.TABLES
    )
    # Analyzed now: until a tenth of them changes again, nothing to do.
    assert "usage_tenant_hours" not in await statistics.analyze_stale(db)


async def test_every_check_every_records_a_look_runs_in_the_background(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "CHECK_EVERY", 3)

    def written(n: int) -> UsageRecorded:
        return UsageRecorded(records=[object()] * n)  # type: ignore[list-item]

    if (earlier := statistics.pending_check(db)) is not None:
        await earlier  # another test's look, on a shared engine
    await statistics.count_written(written(3), db)
    first = statistics.pending_check(db)
    if db.dialect != "postgresql":
        assert first is None
        return
    assert first is not None
    assert first is not earlier
    assert isinstance(await first, list)
    # The count starts again after each look: 2 more are not enough ...
    await statistics.count_written(written(2), db)
    assert statistics.pending_check(db) is first
    # ... 3 are.
    await statistics.count_written(written(1), db)
    second = statistics.pending_check(db)
    assert second is not None
    assert second is not first
    await second
