"""Exports stream: memory stays flat while many rows go out."""

from __future__ import annotations

import tracemalloc
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import insert

from service.db.base import utcnow
from service.db.models import Interaction, Tenant, UsageRecord, User
from service.db.session import Database
from tests.fixtures.app import Server

pytestmark = pytest.mark.asyncio

ROWS = 30_000
SMALL = 3_000


async def insert_usage(db: Database, count: int) -> datetime:
    """`count` records, one a second back from now; returns that now."""
    now = utcnow()
    async with db.write() as session:
        await session.execute(insert(Tenant).values(id="big", created_at=now))
        await session.execute(
            insert(User).values(tenant_id="big", id="u", created_at=now)
        )
        await session.execute(
            insert(Interaction).values(
                id="i", tenant_id="big", user_id="u", created_at=now, updated_at=now
            )
        )
        for start in range(0, count, 1000):
            await session.execute(
                insert(UsageRecord),
                [
                    {
                        "id": uuid.uuid4(),
                        "source": "STREAM",
                        "external_id": f"stream-{n:08d}",
                        "interaction_id": "i",
                        "credits": Decimal("0.000000001"),
                        "created_at": now - timedelta(seconds=n),
                        "received_at": now,
                    }
                    for n in range(start, min(start + 1000, count))
                ],
            )
    return now


async def download(server: Server, key: str, **params: str) -> tuple[int, int, int]:
    """(peak traced bytes, body bytes, lines) of one streamed CSV export."""
    received = lines = 0
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        tracemalloc.start()
        try:
            async with http.stream(
                "GET",
                "/export/usage.csv",
                params=params,
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                assert response.status_code == 200
                assert "content-length" not in response.headers
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    lines += chunk.count(b"\n")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak, received, lines


async def test_memory_stays_flat(server: Server, db: Database, admin_key: str) -> None:
    now = await insert_usage(db, ROWS)
    since = (now - timedelta(seconds=SMALL - 0.5)).isoformat()
    await download(server, admin_key, **{"from": since})  # warm caches
    small_peak, small_body, small_lines = await download(
        server, admin_key, **{"from": since}
    )
    peak, body, lines = await download(server, admin_key)
    assert (small_lines, lines) == (SMALL + 1, ROWS + 1)
    assert body > 5 * small_body
    # Ten times the rows, about the same memory: rows never pile up.
    assert peak < 1.5 * small_peak, (small_peak, peak)
