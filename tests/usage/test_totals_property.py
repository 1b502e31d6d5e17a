"""Property: every total and bucket equals an exact recomputation from raw records.

Random deliveries in random order, with redeliveries, conflicting redeliveries,
usage before registration, usage attributed to a tenant and user directly
(without an interaction; never moved), and re-assignment of interactions to
other users and tenants. Checked: tenant, user and interaction credits over
any range, their rollups (per interaction too) and the interactions' first
and last usage times, user rankings, buckets, and the pages and counts of
interactions(range:) per tenant and per user. The expected figures are computed here in plain Python from the
operations alone, independently of the service's SQL.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import product
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import ADMIN
from service.db.base import Base
from service.db.models import (
    Interaction,
    InteractionDayUsage,
    TenantHourUsage,
    UserDayUsage,
    UserHourUsage,
    UserWeekUsage,
)
from service.db.session import Database
from service.errors import Conflict
from service.uow import unit_of_work
from service.usage import queries
from service.usage.queries import Owner, TimeWindow, UserOrder
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service

START = datetime(2025, 10, 24, tzinfo=UTC)  # spans the EU DST change on 2025-10-26
# 15 days from a Friday: one whole ISO week (Monday 2025-10-27 to 2025-11-03)
# and parts of two more, so that ranges take whole weeks from usage_user_weeks.
SPAN_MINUTES = 15 * 24 * 60
WEEK_STARTS = (3 * 1440, 10 * 1440)  # the Mondays inside the span
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
# Usage attributed to a tenant and user directly (no interaction): "direct:t:u".
DIRECT = "direct:"
owned = st.one_of(
    interactions,
    st.sampled_from([f"{DIRECT}t0:u0", f"{DIRECT}t1:u0", f"{DIRECT}t1:u3"]),
)
registers = st.builds(
    Register,
    interaction=interactions,
    tenant=st.sampled_from(["t0", "t1"]),
    user=st.sampled_from(["u0", "u1", "u2"]),
)
records = st.builds(
    Record,
    source=st.sampled_from(list(Source)),
    interaction=owned,
    external=st.sampled_from([f"x{n}" for n in range(6)]),
    credits=st.sampled_from(CREDITS),
    minute=st.integers(0, SPAN_MINUTES - 1),
)
operations = st.lists(st.one_of(registers, records, records), min_size=1, max_size=25)
# Range ends: any minute, or whole hours, days and weeks (the rollups' steps).
ends = st.one_of(
    st.integers(0, SPAN_MINUTES),
    st.integers(0, SPAN_MINUTES // 60).map(lambda hour: hour * 60),
    st.integers(0, SPAN_MINUTES // 1440).map(lambda day: day * 1440),
    st.sampled_from(WEEK_STARTS),
)
spans = st.tuples(ends, ends).map(lambda pair: (min(pair), max(pair)))


async def _scenario(
    database_url: str, ops: list[Register | Record], span: tuple[int, int]
) -> None:
    db = Database.from_url(database_url)
    try:
        async with db.write() as session:
            for table in reversed(Base.metadata.sorted_tables):
                await session.execute(text(f"DELETE FROM {table.name}"))
        stored: dict[tuple[str, str], Record] = {}
        owners: dict[str, tuple[str, str]] = {}
        for op in ops:
            if isinstance(op, Register):
                async with unit_of_work(db) as uow:
                    await usage_service.register_interaction(
                        uow,
                        ADMIN,
                        interaction_id=op.interaction,
                        tenant_id=op.tenant,
                        user_id=op.user,
                    )
                owners[op.interaction] = (op.tenant, op.user)
                continue
            key = (op.source.value, op.external)
            first = stored.get(key)
            direct = _direct(op.interaction)
            usage = UsageIn(
                source=op.source,
                interaction_id=None if direct else op.interaction,
                external_id=op.external,
                credits=op.credits,
                created_at=START + timedelta(minutes=op.minute),
                tenant_id=direct[0] if direct else None,
                user_id=direct[1] if direct else None,
            )
            conflict = first is not None and (
                first.credits != op.credits or first.interaction != op.interaction
            )
            try:
                async with unit_of_work(db) as uow:
                    await usage_service.record(uow, ADMIN, usage)
            except Conflict:
                assert conflict, f"unexpected conflict for {op}"
            else:
                assert not conflict, f"missing conflict for {op}"
                stored.setdefault(key, op)
                if direct:
                    # Attributed at once, and never moved: the "owners" of
                    # the recomputation hold direct owners under their token.
                    owners[op.interaction] = direct
        await _check(db, list(stored.values()), owners, span)
    finally:
        await db.dispose()


def _direct(interaction: str) -> tuple[str, str] | None:
    """(tenant, user) of a directly attributed record, None for an interaction."""
    if not interaction.startswith(DIRECT):
        return None
    tenant, user = interaction.removeprefix(DIRECT).split(":")
    return tenant, user


def _expected(
    rows: list[Record],
    owners: dict[str, tuple[str, str]],
    owner: Owner,
    span: tuple[int, int] | None = None,
) -> dict[object, dict[str, Decimal]]:
    totals: dict[object, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if owner is Owner.INTERACTION and _direct(row.interaction):
            continue  # in no interaction's list
        if row.interaction not in owners:
            continue  # unattributed until registered
        if span is not None and not span[0] <= row.minute < span[1]:
            continue
        tenant, user = owners[row.interaction]
        key = {Owner.TENANT: tenant, Owner.USER: (tenant, user)}.get(
            owner, row.interaction
        )
        totals[key][row.source.value] += row.credits
    return totals


def _owner_key(owners: dict[str, tuple[str, str]], row: Record, owner: Owner) -> object:
    """The tenant or (tenant, user) a record counts for, None if unregistered."""
    if row.interaction not in owners:
        return None
    tenant, user = owners[row.interaction]
    return tenant if owner is Owner.TENANT else (tenant, user)


def _counts(
    rows: list[Record],
    owners: dict[str, tuple[str, str]],
    owner: Owner,
    span: tuple[int, int],
) -> dict[object, int]:
    counts: dict[object, int] = defaultdict(int)
    for row in rows:
        if row.interaction in owners and span[0] <= row.minute < span[1]:
            tenant, user = owners[row.interaction]
            counts[tenant if owner is Owner.TENANT else (tenant, user)] += 1
    return counts


async def _check_span(
    session: AsyncSession,
    rows: list[Record],
    owners: dict[str, tuple[str, str]],
    span: tuple[int, int],
) -> None:
    """Totals, record counts, user rankings and buckets over a drawn range."""
    window = TimeWindow(
        START + timedelta(minutes=span[0]), START + timedelta(minutes=span[1])
    )
    tenants = sorted({t for t, _ in owners.values()})
    users = sorted(set(owners.values()))
    for owner, owner_keys in ((Owner.TENANT, tenants), (Owner.USER, users)):
        expected = _expected(rows, owners, owner, span)
        counts = _counts(rows, owners, owner, span)
        got = await queries.credit_summaries(session, owner, owner_keys, window)
        for key in owner_keys:
            assert dict(got[key].by_source) == dict(expected.get(key, {})), (
                owner,
                key,
                span,
            )
            assert got[key].records == counts.get(key, 0), (owner, key, span)
    expected_users = _expected(rows, owners, Owner.USER, span)
    pages = await queries.users_pages(
        session, tenants, window, UserOrder.CREDITS_DESC, 100, 0
    )
    for tenant in tenants:
        ranked = sorted(
            (
                (-sum(by_source.values(), Decimal(0)), key[1])  # type: ignore[index]
                for key, by_source in expected_users.items()
                if key[0] == tenant  # type: ignore[index]
            ),
        )
        assert [item[1] for item in pages[tenant].items] == [u for _, u in ranked]
        assert pages[tenant].total == len(ranked)
    await _check_interactions(session, rows, owners, window, span)
    if span[0] == span[1]:
        return
    for zone_name in ZONES:
        for unit in ("hour", "day"):
            for owner, owner_keys in ((Owner.TENANT, tenants), (Owner.USER, users)):
                got_buckets = await queries.usage_buckets(
                    session, owner, owner_keys, window, unit, zone_name, 1000
                )
                for key in owner_keys:
                    for bucket in got_buckets[key]:
                        inside = [
                            r
                            for r in rows
                            if _owner_key(owners, r, owner) == key
                            and span[0] <= r.minute < span[1]
                            and bucket.start
                            <= START + timedelta(minutes=r.minute)
                            < bucket.end
                        ]
                        want = sum((r.credits for r in inside), Decimal(0))
                        assert bucket.credits.total == want, (
                            owner,
                            zone_name,
                            unit,
                            span,
                        )
                        assert bucket.credits.records == len(inside)


async def _check_interactions(
    session: AsyncSession,
    rows: list[Record],
    owners: dict[str, tuple[str, str]],
    window: TimeWindow,
    span: tuple[int, int],
) -> None:
    """Interaction credits over the range (also scoped to a tenant), and the
    pages and counts of interactions(range:) per tenant and per user."""
    registered = sorted(i for i in owners if not _direct(i))
    expected = _expected(rows, owners, Owner.INTERACTION, span)
    got = await queries.credit_summaries(session, Owner.INTERACTION, registered, window)
    for interaction in registered:
        assert dict(got[interaction].by_source) == dict(
            expected.get(interaction, {})
        ), (interaction, span)
    for tenant in sorted({owners[i][0] for i in registered}):
        scoped = await queries.credit_summaries(
            session, Owner.INTERACTION, registered, window, tenant=tenant
        )
        for interaction in registered:
            want = (
                expected.get(interaction, {})
                if owners[interaction][0] == tenant
                else {}
            )
            assert dict(scoped[interaction].by_source) == dict(want), (tenant, span)
    # Newest usage inside the range per registered interaction.
    newest: dict[str, int] = {}
    for row in rows:
        if row.interaction in registered and span[0] <= row.minute < span[1]:
            newest[row.interaction] = max(newest.get(row.interaction, -1), row.minute)
    tenants = sorted({t for t, _ in owners.values()})
    users = sorted(set(owners.values()))
    for owner, owner_keys in ((Owner.TENANT, tenants), (Owner.USER, users)):

        def key(interaction: str, owner: Owner = owner) -> object:
            tenant, user = owners[interaction]
            return tenant if owner is Owner.TENANT else (tenant, user)

        for first, offset in ((100, 0), (1, 0), (1, 1), (2, 1)):
            pages = await queries.interactions_pages(
                session, owner, owner_keys, window, first, offset
            )
            for owner_key in owner_keys:
                ranked = sorted(
                    (i for i in newest if key(i) == owner_key),
                    key=lambda i: (newest[i], i),
                    reverse=True,
                )
                page = pages[owner_key]
                assert [r.id for r in page.items] == ranked[offset : offset + first], (
                    owner,
                    owner_key,
                    span,
                    first,
                    offset,
                )
                assert page.has_next == (len(ranked) > offset + first)
        counts = await queries.interaction_counts(session, owner, owner_keys, window)
        for owner_key in owner_keys:
            want_count = sum(1 for i in newest if key(i) == owner_key)
            assert counts.get(owner_key, 0) == want_count, (owner, owner_key, span)


async def _check_rollups(
    session: AsyncSession, rows: list[Record], owners: dict[str, tuple[str, str]]
) -> None:
    """Every rollup row with records equals the sum of its records."""
    hours: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    days: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    user_hours: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    weeks: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    for row in rows:
        if row.interaction not in owners:
            continue
        tenant, user = owners[row.interaction]
        at = START + timedelta(minutes=row.minute)
        day = at.replace(hour=0, minute=0)
        monday = day - timedelta(days=day.weekday())
        for entry in (
            hours[(tenant, at.replace(minute=0), row.source.value)],
            days[(tenant, day, user, row.source.value)],
            user_hours[(tenant, at.replace(minute=0), user, row.source.value)],
            weeks[(tenant, monday, user, row.source.value)],
        ):
            entry[0] += row.credits
            entry[1] += 1
    stored_hours = {
        tuple(r[:3]): [r[3], r[4]]
        for r in await session.execute(select(TenantHourUsage.__table__))
        if r[4]
    }
    stored_days = {
        tuple(r[:4]): [r[4], r[5]]
        for r in await session.execute(select(UserDayUsage.__table__))
        if r[5]
    }
    stored_user_hours = {
        tuple(r[:4]): [r[4], r[5]]
        for r in await session.execute(select(UserHourUsage.__table__))
        if r[5]
    }
    assert stored_hours == dict(hours)
    assert stored_days == dict(days)
    stored_weeks = {
        tuple(r[:4]): [r[4], r[5]]
        for r in await session.execute(select(UserWeekUsage.__table__))
        if r[5]
    }
    assert stored_user_hours == dict(user_hours)
    assert stored_weeks == dict(weeks)
    # Per interaction: every record naming it, registered or not.
    interaction_days: dict[tuple[Any, ...], list[Any]] = defaultdict(
        lambda: [Decimal(0), 0]
    )
    spans: dict[str, list[datetime]] = {}
    for row in rows:
        if _direct(row.interaction):
            continue
        at = START + timedelta(minutes=row.minute)
        entry = interaction_days[
            (row.interaction, at.replace(hour=0, minute=0), row.source.value)
        ]
        entry[0] += row.credits
        entry[1] += 1
        spans.setdefault(row.interaction, []).append(at)
    stored_interaction_days = {
        tuple(r[:3]): [r[3], r[4]]
        for r in await session.execute(select(InteractionDayUsage.__table__))
    }
    assert stored_interaction_days == dict(interaction_days)
    stored_spans = {
        r.id: (r.first_usage_at, r.last_usage_at)
        for r in await session.execute(
            select(
                Interaction.id, Interaction.first_usage_at, Interaction.last_usage_at
            )
        )
    }
    assert stored_spans == {
        i: (min(spans[i]), max(spans[i])) if i in spans else (None, None)
        for i in owners
        if not _direct(i)
    }


async def _check(
    db: Database,
    rows: list[Record],
    owners: dict[str, tuple[str, str]],
    span: tuple[int, int],
) -> None:
    async with db.read() as session:
        await _check_rollups(session, rows, owners)
        await _check_span(session, rows, owners, span)
    tenants = sorted({t for t, _ in owners.values()})
    users = sorted(set(owners.values()))
    keys: dict[Owner, list[Hashable]] = {
        Owner.TENANT: list(tenants),
        Owner.USER: list(users),
        Owner.INTERACTION: [i for i in sorted(owners) if not _direct(i)],
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
        for zone_name, unit, owner in product(
            ZONES, ("hour", "day"), (Owner.TENANT, Owner.USER)
        ):
            zone = ZoneInfo(zone_name)
            owner_keys = keys[owner]
            got_buckets = await queries.usage_buckets(
                session, owner, owner_keys, window, unit, zone_name, 1000
            )
            for key in owner_keys:
                buckets = got_buckets[key]
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
                            if _owner_key(owners, r, owner) == key
                            and bucket.start
                            <= START + timedelta(minutes=r.minute)
                            < bucket.end
                        ),
                        Decimal(0),
                    )
                    assert bucket.credits.total == want, (zone_name, unit, bucket)
                assert sum(b.credits.records for b in buckets) == sum(
                    1 for r in rows if _owner_key(owners, r, owner) == key
                )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, span=spans)
# Interactions straddling the range's end (their newest usage inside it is
# read from their records), one with a gap over the whole range (no usage in
# it), usage before registration and a re-registration to another owner.
@example(
    ops=[
        Register("i0", "t0", "u0"),
        Record(Source.STREAM, "i0", "x0", Decimal("0.1"), 100),
        Record(Source.STREAM, "i0", "x1", Decimal(1), 3000),
        Record(Source.DOCUMENT, "i0", "x1", Decimal("2.5"), 6000),
        Record(Source.STREAM, "i1", "x2", Decimal("0.2"), 2000),
        Record(Source.TRANSCRIPT, "i1", "x2", Decimal(1), 7000),
        Register("i1", "t0", "u0"),
        Register("i2", "t0", "u1"),
        Record(Source.STREAM, "i2", "x3", Decimal(1), 200),
        Record(Source.STREAM, "i2", "x4", Decimal(1), 8000),
        Record(Source.DOCUMENT, "i3", "x5", Decimal("0.333333333"), 4000),
        Register("i3", "t1", "u0"),
        Register("i1", "t1", "u2"),
    ],
    span=(1000, 5000),
)
@example(
    ops=[
        Register("i0", "t0", "u0"),
        Register("i1", "t0", "u0"),
        Record(Source.STREAM, "i0", "x0", Decimal(1), 1439),
        Record(Source.STREAM, "i1", "x1", Decimal(1), 1439),
        Record(Source.STREAM, "i1", "x2", Decimal(1), 1440),
        Record(Source.FACTS, f"{DIRECT}t0:u0", "x3", Decimal("2.5"), 1000),
    ],
    span=(0, 1440),
)
# A range of a whole ISO week and the days and hours beside it (users' totals
# and rankings take the week from usage_user_weeks), records on both sides of
# each Monday, and a re-registration that moves a week's rows to another user.
@example(
    ops=[
        Register("i0", "t0", "u0"),
        Register("i1", "t0", "u1"),
        Record(Source.STREAM, "i0", "x0", Decimal("0.1"), WEEK_STARTS[0] - 1),
        Record(Source.STREAM, "i0", "x1", Decimal(1), WEEK_STARTS[0]),
        Record(Source.DOCUMENT, "i1", "x1", Decimal("2.5"), WEEK_STARTS[0] + 5000),
        Record(Source.STREAM, "i1", "x2", Decimal("0.2"), WEEK_STARTS[1] - 1),
        Record(Source.TRANSCRIPT, "i0", "x3", Decimal(1), WEEK_STARTS[1]),
        Record(Source.FACTS, f"{DIRECT}t0:u1", "x4", Decimal("0.333333333"), 9000),
        Register("i0", "t0", "u1"),
        Record(Source.STREAM, "i0", "x5", Decimal(1), WEEK_STARTS[1] + 30),
    ],
    span=(WEEK_STARTS[0] - 90, WEEK_STARTS[1] + 61),
)
def test_totals_and_buckets_equal_a_recomputation(
    database_url: str, ops: list[Register | Record], span: tuple[int, int]
) -> None:
    asyncio.run(_scenario(database_url, ops, span))
