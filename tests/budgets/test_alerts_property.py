"""Property: random usage yields exactly one alert per crossed (budget, period,
threshold), and every status equals a recomputation from the raw records.

Each example draws a catalogue of usage records (interaction or direct owner,
credits, a minute within eight days that span the EU DST change and a month
end) and a sequence of steps: batches of catalogue records (so redeliveries
repeat a record exactly, and records arrive late, in any order), concurrent
groups of batches, and (re-)registrations that move interactions between users
and tenants. The model, in plain Python with its own calendar code, keeps each
(budget, period)'s highest usage after every step: a threshold must have an
alert exactly when that peak reached it (alerts are never taken back, and a
concurrent group's commits only add, so its peak is its final state).

Concurrent groups here check that concurrency loses or doubles nothing and
deadlocks nowhere; the narrow race the budget lock closes (two uncommitted
writers that cross a threshold only together) is forced deterministically in
test_alerts.py::test_two_writers_that_cross_together_alert_once.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from service import domains
from service.budgets.models import Budget
from service.budgets.periods import Period, Window
from service.budgets.status import statuses
from service.db.base import Base, utcnow
from service.db.session import Database
from service.usage.records import Source, UsageIn
from tests.budgets.alerting import alerts, budget, ingest, owners, register, usage

domains.load()  # the budget handlers, as the app and the worker have them

START = datetime(2025, 10, 25, tzinfo=UTC)  # DST ends 10-26 in Europe; 11-01
SPAN_MINUTES = 8 * 24 * 60
TENANTS = ("t0", "t1")
USERS = ("u0", "u1", "u2")
INTERACTIONS = ("i0", "i1", "i2", "i3")
DIRECT = ("direct:t0:u0", "direct:t1:u1")
CREDITS = [Decimal(v) for v in ("0", "0.1", "0.25", "0.5", "1", "1.5")]
SOURCES = (Source.TRANSCRIPT, Source.DOCUMENT, Source.STREAM)


@dataclass(frozen=True)
class Spec:
    """A budget of the scenario."""

    tenant: str
    user: str | None
    period: Period
    limit: str
    zone: str
    thresholds: tuple[int, ...]


BUDGETS = (
    Spec("t0", None, Period.DAY, "2", "UTC", (25, 50, 100, 150)),
    Spec("t0", "u0", Period.DAY, "1", "Europe/Copenhagen", (50, 100)),
    Spec("t1", None, Period.WEEK, "3", "Europe/Copenhagen", (10, 50, 100)),
    Spec("t1", "u1", Period.MONTH, "2", "Asia/Kolkata", (50, 100, 200)),
    Spec("t0", "u2", Period.MONTH, "1.5", "UTC", (100,)),
)


@dataclass(frozen=True)
class Record:
    """A catalogue entry: the same key always carries the same values."""

    owner: str  # an interaction, or "direct:<tenant>:<user>"
    credits: Decimal
    minute: int


@dataclass(frozen=True)
class Register:
    interaction: str
    tenant: str
    user: str


@dataclass(frozen=True)
class Batch:
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Concurrent:
    batches: tuple[Batch, ...]


Step = Register | Batch | Concurrent
CATALOGUE = 10

records = st.builds(
    Record,
    owner=st.sampled_from(INTERACTIONS + DIRECT),
    credits=st.sampled_from(CREDITS),
    minute=st.integers(0, SPAN_MINUTES - 1),
)
batches = st.builds(
    Batch,
    st.lists(st.integers(0, CATALOGUE - 1), min_size=1, max_size=4).map(tuple),
)
steps = st.one_of(
    st.builds(
        Register,
        st.sampled_from(INTERACTIONS),
        st.sampled_from(TENANTS),
        st.sampled_from(USERS),
    ),
    batches,
    batches,
    st.builds(Concurrent, st.lists(batches, min_size=2, max_size=4).map(tuple)),
)


def local_window(at: datetime, period: Period, zone: str) -> Window:
    """The calendar period containing `at`, computed here independently."""
    tz = ZoneInfo(zone)
    day = at.astimezone(tz).date()
    if period is Period.WEEK:
        day -= timedelta(days=day.weekday())
    elif period is Period.MONTH:
        day = day.replace(day=1)
    if period is Period.DAY:
        following = day + timedelta(days=1)
    elif period is Period.WEEK:
        following = day + timedelta(days=7)
    else:
        following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)

    def midnight(d: object) -> datetime:
        return datetime.fromisoformat(f"{d}T00:00").replace(tzinfo=tz).astimezone(UTC)

    return Window(midnight(day), midnight(following))


class Model:
    """The ledger and the budgets' peaks, from the steps alone."""

    def __init__(self, catalogue: list[Record]) -> None:
        self.catalogue = catalogue
        self.owners: dict[str, tuple[str, str]] = {}
        self.stored: set[int] = set()
        self.peaks: dict[tuple[int, datetime], Decimal] = {}

    def owner(self, index: int) -> tuple[str, str] | None:
        record = self.catalogue[index]
        if record.owner.startswith("direct:"):
            _, tenant, user = record.owner.split(":")
            return tenant, user
        return self.owners.get(record.owner)

    def used(self) -> dict[tuple[int, datetime], tuple[Window, Decimal, int]]:
        """(budget index, period start) -> (window, total, records)."""
        result: dict[tuple[int, datetime], tuple[Window, Decimal, int]] = {}
        for index in self.stored:
            owner = self.owner(index)
            if owner is None:
                continue
            record = self.catalogue[index]
            at = START + timedelta(minutes=record.minute)
            for n, spec in enumerate(BUDGETS):
                if spec.tenant != owner[0] or spec.user not in (None, owner[1]):
                    continue
                window = local_window(at, spec.period, spec.zone)
                _, total, count = result.get((n, window.start), (window, Decimal(0), 0))
                result[(n, window.start)] = (window, total + record.credits, count + 1)
        return result

    def settle(self) -> None:
        """Fold the state after a step into the peaks."""
        for key, (_, total, _) in self.used().items():
            self.peaks[key] = max(self.peaks.get(key, Decimal(0)), total)

    def expected_alerts(self) -> set[tuple[int, datetime, int]]:
        return {
            (n, start, t)
            for (n, start), peak in self.peaks.items()
            for t in BUDGETS[n].thresholds
            if peak * 100 >= Decimal(BUDGETS[n].limit) * t
        }


def usage_of(catalogue: list[Record], index: int) -> UsageIn:
    record = catalogue[index]
    at = START + timedelta(minutes=record.minute)
    source = SOURCES[index % len(SOURCES)]
    if record.owner.startswith("direct:"):
        _, tenant, user = record.owner.split(":")
        return usage(
            f"x{index}",
            str(record.credits),
            at,
            tenant=tenant,
            user=user,
            source=source,
        )
    return usage(
        f"x{index}", str(record.credits), at, interaction=record.owner, source=source
    )


async def _scenario(
    database_url: str, catalogue: list[Record], plan: list[Step]
) -> None:
    db = Database.from_url(database_url)
    try:
        async with db.write() as session:
            for table in reversed(Base.metadata.sorted_tables):
                await session.execute(text(f"DELETE FROM {table.name}"))
        await owners(db, *((t, u) for t in TENANTS for u in USERS))
        rows: list[Budget] = [
            await budget(
                db,
                spec.tenant,
                spec.user,
                period=spec.period,
                limit=spec.limit,
                thresholds=spec.thresholds,
                time_zone=spec.zone,
            )
            for spec in BUDGETS
        ]
        model = Model(catalogue)

        async def send(batch: Batch) -> None:
            await ingest(db, *(usage_of(catalogue, i) for i in batch.indices))

        for step in plan:
            if isinstance(step, Register):
                await register(db, step.interaction, step.tenant, step.user)
                model.owners[step.interaction] = (step.tenant, step.user)
            elif isinstance(step, Batch):
                await send(step)
                model.stored.update(step.indices)
            else:
                await asyncio.gather(*(send(b) for b in step.batches))
                for b in step.batches:
                    model.stored.update(b.indices)
            model.settle()
        index_of = {row.id: n for n, row in enumerate(rows)}
        stored = await alerts(db)
        keys = [(index_of[a.budget_id], a.period_start, a.threshold) for a in stored]
        assert not [k for k, c in Counter(keys).items() if c > 1], "an alert twice"
        assert set(keys) == model.expected_alerts()
        for alert in stored:
            spec = BUDGETS[index_of[alert.budget_id]]
            window = local_window(alert.period_start, spec.period, spec.zone)
            assert (alert.period_start, alert.period_end) == (window.start, window.end)
            assert alert.used * 100 >= Decimal(spec.limit) * alert.threshold
        # Statuses equal a recomputation: every period with usage, and the
        # periods of every alert (usage may have moved away since).
        expected = model.used()
        pairs: dict[tuple[int, datetime], Window] = {
            key: window for key, (window, _, _) in expected.items()
        }
        for n, start, _ in keys:
            spec = BUDGETS[n]
            pairs.setdefault((n, start), local_window(start, spec.period, spec.zone))
        ordered = sorted(pairs)
        async with db.read() as session:
            got = await statuses(
                session, [(rows[n], pairs[(n, s)]) for n, s in ordered], utcnow()
            )
        totals: dict[tuple[int, datetime], tuple[Decimal, int]] = defaultdict(
            lambda: (Decimal(0), 0)
        )
        for key, (_, total, count) in expected.items():
            totals[key] = (total, count)
        for key, status in zip(ordered, got, strict=True):
            assert (status.total, status.used.records) == totals[key], key
            assert status.remaining == Decimal(BUDGETS[key[0]].limit) - status.total
    finally:
        await db.dispose()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    catalogue=st.lists(records, min_size=CATALOGUE, max_size=CATALOGUE),
    plan=st.lists(steps, min_size=1, max_size=14),
)
def test_one_alert_per_crossed_threshold_and_exact_statuses(
    database_url: str, catalogue: list[Record], plan: list[Step]
) -> None:
    asyncio.run(_scenario(database_url, catalogue, plan))
