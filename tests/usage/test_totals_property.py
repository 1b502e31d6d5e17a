"""Property: every total and bucket equals an exact recomputation from raw records.

Random deliveries in random order, with redeliveries, conflicting redeliveries,
usage before registration, and re-assignment of interactions to other users and
tenants. The expected figures are computed here in plain Python from the
operations alone, independently of the service's SQL.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from service.auth.principal import ADMIN
from service.db.base import Base
from service.db.session import Database
from service.errors import Conflict
from service.usage import queries
from service.usage.queries import Owner, TimeWindow
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service

START = datetime(2025, 10, 24, tzinfo=UTC)  # spans the EU DST change on 2025-10-26
SPAN_MINUTES = 6 * 24 * 60
ZONES = ("UTC", "Europe/Copenhagen", "Asia/Kolkata", "America/New_York")
CREDITS = [
    Decimal(v)
    for v in ("0", "0.1", "0.2", "0.333333333", "1", "2.5", "999999999999.999999999")
]


@dataclass(frozen=True)
class Register:
    interaction: str
    tenant: str
    user: str


@dataclass(frozen=True)
class Record:
    source: Source
    interaction: str
    external: str
    credits: Decimal
    minute: int


interactions = st.sampled_from(["i0", "i1", "i2", "i3"])
registers = st.builds(
    Register,
    interaction=interactions,
    tenant=st.sampled_from(["t0", "t1"]),
    user=st.sampled_from(["u0", "u1", "u2"]),
)
records = st.builds(
    Record,
    source=st.sampled_from(list(Source)),
    interaction=interactions,
    external=st.sampled_from([f"x{n}" for n in range(6)]),
    credits=st.sampled_from(CREDITS),
    minute=st.integers(0, SPAN_MINUTES - 1),
)
operations = st.lists(st.one_of(registers, records, records), min_size=1, max_size=25)


async def _scenario(database_url: str, ops: list[Register | Record]) -> None:
    db = Database.from_url(database_url)
    try:
        async with db.write() as session:
            for table in reversed(Base.metadata.sorted_tables):
                await session.execute(text(f"DELETE FROM {table.name}"))
        stored: dict[tuple[str, str], Record] = {}
        owners: dict[str, tuple[str, str]] = {}
        for op in ops:
            if isinstance(op, Register):
                async with db.write() as session:
                    await usage_service.register_interaction(
                        session,
                        ADMIN,
                        interaction_id=op.interaction,
                        tenant_id=op.tenant,
                        user_id=op.user,
                    )
                owners[op.interaction] = (op.tenant, op.user)
                continue
            key = (op.source.value, op.external)
            first = stored.get(key)
            usage = UsageIn(
                source=op.source,
                interaction_id=op.interaction,
                external_id=op.external,
                credits=op.credits,
                created_at=START + timedelta(minutes=op.minute),
            )
            conflict = first is not None and (
                first.credits != op.credits or first.interaction != op.interaction
            )
            try:
                async with db.write() as session:
                    await usage_service.record(session, ADMIN, usage)
            except Conflict:
                assert conflict, f"unexpected conflict for {op}"
            else:
                assert not conflict, f"missing conflict for {op}"
                stored.setdefault(key, op)
        await _check(db, list(stored.values()), owners)
    finally:
        await db.dispose()


def _expected(
    rows: list[Record], owners: dict[str, tuple[str, str]], owner: Owner
) -> dict[object, dict[str, Decimal]]:
    totals: dict[object, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row.interaction not in owners:
            continue  # unattributed until registered
        tenant, user = owners[row.interaction]
        key = {Owner.TENANT: tenant, Owner.USER: (tenant, user)}.get(
            owner, row.interaction
        )
        totals[key][row.source.value] += row.credits
    return totals


async def _check(
    db: Database, rows: list[Record], owners: dict[str, tuple[str, str]]
) -> None:
    tenants = sorted({t for t, _ in owners.values()})
    users = sorted(set(owners.values()))
    keys: dict[Owner, list[Hashable]] = {
        Owner.TENANT: list(tenants),
        Owner.USER: list(users),
        Owner.INTERACTION: [*sorted(owners)],
    }
    window = TimeWindow(START, START + timedelta(minutes=SPAN_MINUTES))
    async with db.read() as session:
        for owner, owner_keys in keys.items():
            expected = _expected(rows, owners, owner)
            got = await queries.credit_summaries(
                session, owner, owner_keys, TimeWindow()
            )
            for key in owner_keys:
                assert dict(got[key].by_source) == {
                    s: v for s, v in expected.get(key, {}).items()
                }, (owner, key)
        for zone_name in ZONES:
            zone = ZoneInfo(zone_name)
            for unit in ("hour", "day"):
                got_buckets = await queries.usage_buckets(
                    session,
                    Owner.TENANT,
                    tenants,
                    window,
                    unit,
                    zone_name,
                    1000,
                )
                for tenant in tenants:
                    buckets = got_buckets[tenant]
                    assert buckets[0].start <= window.start  # type: ignore[operator]
                    assert buckets[-1].end >= window.end  # type: ignore[operator]
                    for bucket in buckets:
                        local = bucket.start.astimezone(zone)
                        assert (local.minute, local.second) == (0, 0)
                        if unit == "day":
                            assert local.hour == 0
                        want = sum(
                            (
                                r.credits
                                for r in rows
                                if owners.get(r.interaction, ("",))[0] == tenant
                                and bucket.start
                                <= START + timedelta(minutes=r.minute)
                                < bucket.end
                            ),
                            Decimal(0),
                        )
                        assert bucket.credits.total == want, (zone_name, unit, bucket)
                    assert sum(b.credits.records for b in buckets) == sum(
                        1 for r in rows if owners.get(r.interaction, ("",))[0] == tenant
                    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_totals_and_buckets_equal_a_recomputation(
    database_url: str, ops: list[Register | Record]
) -> None:
    asyncio.run(_scenario(database_url, ops))
