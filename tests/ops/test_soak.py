"""`python -m bench.soak` end to end at a tiny duration (PostgreSQL).

The soak makes and drops a database of its own on the test server
(TEST_POSTGRES_URL), so it runs with TEST_DATABASE=postgresql; the figures of
so short a run (4 s windows) are not judged here, only that it reports every
window, passes the ledger checks and sees no error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from bench import soak
from tests.fixtures.database import BACKEND, POSTGRES_URL

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="the soak runs a deployment on PostgreSQL; TEST_DATABASE=postgresql",
)


def test_a_short_soak_reports_windows_exactness_and_no_errors(tmp_path: Path) -> None:
    pg = POSTGRES_URL.removeprefix("postgresql+asyncpg://")
    output = tmp_path / "soak.json"
    options = soak.Options(
        minutes=0.25,
        window_seconds=4,
        warmup_windows=1,
        capacity_seconds=4,
        pg=pg,
        output=output,
    )
    result = asyncio.run(soak.run(options, tmp_path))

    windows = result["windows"]
    assert [w["window"] for w in windows] == [1, 2, 3, 4]
    assert windows[-1]["to_s"] == 15
    criteria = result["criteria"]
    assert criteria["exact"] == {"ok": True, "error": None}, criteria["exact"]
    assert criteria["errors"]["ok"], criteria["errors"]
    assert result["exact"]["subscribers"] == 2
    assert result["exact"]["jobs"] > 0
    # Measured, then paced at half of it, every kind of call in every window.
    for kind, rate in result["capacity_calls_per_s"].items():
        assert rate > 0, kind
        assert result["target_calls_per_s"][kind] == pytest.approx(rate / 2, rel=0.01)
    for window in windows:
        assert window["server_rss_mb"] > 0
        assert window["live"]["events"] > 0
        assert {
            "registerInteraction",
            "recordStreamUsage",
            "ingestUsage",
            "dashboard",
        } <= set(window["ops"]), window["ops"]
    assert {"memory", "p99"} <= set(criteria)
    assert "p99 ms" in soak.render(result)
    # Its database is gone.
    assert not asyncio.run(_database_exists(pg, result["database"]))


async def _database_exists(pg: str, name: str) -> bool:
    conn = await asyncpg.connect(f"postgresql://{pg}/postgres")
    try:
        found = await conn.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", name
        )
    finally:
        await conn.close()
    return found is not None
