"""Exports against hostile data: formula cells (CSV injection) and extreme dates."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import insert

from service.db.base import utcnow
from service.db.models import Interaction, Tenant, UsageRecord, User
from service.db.session import Database
from tests.fixtures.app import Server

pytestmark = pytest.mark.asyncio

HOSTILE = {
    "tenant": '=HYPERLINK("http://evil","x")',
    "user": "+cmd|' /C calc'!A0",
    "interaction": "@SUM(1+1)",
    "external": "-2+3",
}


async def _ledger(db: Database, records: list[tuple[str, datetime, str]]) -> None:
    """One interaction of HOSTILE's tenant and user, with `records` (id, at, credits)."""
    now = utcnow()
    async with db.write() as session:
        await session.execute(
            insert(Tenant).values(id=HOSTILE["tenant"], created_at=now)
        )
        await session.execute(
            insert(User).values(
                tenant_id=HOSTILE["tenant"], id=HOSTILE["user"], created_at=now
            )
        )
        await session.execute(
            insert(Interaction).values(
                id=HOSTILE["interaction"],
                tenant_id=HOSTILE["tenant"],
                user_id=HOSTILE["user"],
                created_at=now,
                updated_at=now,
            )
        )
        await session.execute(
            insert(UsageRecord),
            [
                {
                    "id": uuid.uuid4(),
                    "source": "STREAM",
                    "external_id": external,
                    "interaction_id": HOSTILE["interaction"],
                    "tenant_id": HOSTILE["tenant"],
                    "user_id": HOSTILE["user"],
                    "credits": Decimal(credits),
                    "created_at": at,
                    "received_at": now,
                }
                for external, at, credits in records
            ],
        )


async def _get(server: Server, key: str, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        response = await http.get(
            path, params=params, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    return response


async def test_the_rule() -> None:
    from service.export.formats import csv_cell

    for trigger in ("=", "+", "-", "@", "\t", "\r", "|"):
        assert csv_cell(f"{trigger}1+A1") == f"'{trigger}1+A1"
    assert csv_cell("-0.5") == "-0.5"  # a plain number stays a number
    assert csv_cell("12") == "12"
    assert csv_cell("-1e3") == "'-1e3"
    assert csv_cell("abc") == "abc"
    assert csv_cell(7) == 7
    assert csv_cell(None) == ""


async def test_no_cell_starts_a_formula(
    server: Server, db: Database, admin_key: str
) -> None:
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    await _ledger(db, [(HOSTILE["external"], at, "0.5"), ("-7", at, "1")])
    for path, params in [
        ("/export/usage.csv", {}),
        ("/export/usage.csv", {"tenant": HOSTILE["tenant"]}),
        ("/export/daily.csv", {}),
        ("/export/daily.csv", {"timeZone": "Europe/Copenhagen"}),
    ]:
        response = await _get(server, admin_key, path, **params)
        rows = list(csv.reader(io.StringIO(response.text)))
        assert len(rows) >= 2, rows
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r", "|")), row
                if cell.startswith("-"):
                    assert cell == "-7", row  # a plain number
        cells = {cell for row in rows for cell in row}
        assert "'" + HOSTILE["tenant"] in cells
        assert "'" + HOSTILE["user"] in cells
        if path == "/export/usage.csv":
            assert "'" + HOSTILE["interaction"] in cells
            assert "'" + HOSTILE["external"] in cells
            assert "0.5" in cells
    # NDJSON is data, not a spreadsheet: ids stay exact there.
    ndjson = await _get(server, admin_key, "/export/usage.ndjson")
    assert f'"externalId":"{HOSTILE["external"]}"' in ndjson.text


EXTREMES = [
    ("first", datetime(1, 1, 1, 0, 30, tzinfo=UTC), "0.1"),
    ("early", datetime(1, 1, 2, 3, tzinfo=UTC), "0.2"),
    ("middle", datetime(2025, 6, 1, 12, tzinfo=UTC), "0.3"),
    ("late", datetime(9999, 12, 30, 20, tzinfo=UTC), "0.4"),
    ("last", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "0.5"),
]


@pytest.mark.parametrize(
    "zone", ["UTC", "Pacific/Kiritimati", "America/Adak", "Asia/Kolkata"]
)
async def test_year_1_and_9999_do_not_break_daily(
    server: Server, db: Database, admin_key: str, zone: str
) -> None:
    await _ledger(db, EXTREMES)
    response = await _get(server, admin_key, "/export/daily.csv", timeZone=zone)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sum(int(r["records"]) for r in rows) == len(EXTREMES), rows
    assert sum(Decimal(r["credits"]) for r in rows) == Decimal("1.5")
    dates = [r["date"] for r in rows]
    assert dates == sorted(dates)
    assert dates[0].startswith("0001-01-0")
    assert dates[-1].startswith("9999-12-3")
    usage = await _get(server, admin_key, "/export/usage.csv")
    lines = usage.text.splitlines()
    assert len(lines) == 1 + len(EXTREMES)
    assert lines[1].endswith("0001-01-01T00:30:00Z")
    assert lines[-1].endswith("9999-12-31T23:59:59Z")
    ndjson = await _get(server, admin_key, "/export/usage.ndjson")
    assert len(ndjson.text.splitlines()) == len(EXTREMES)
