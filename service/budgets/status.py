"""A budget's consumption in a period: the same exact sum as `credits(range:)`.

`used` is read with `usage.queries.credit_summaries` over the period, the
query behind `Tenant.credits` and `User.credits`: whole UTC hours (tenants) or
days (users) from the rollups and only the period's ragged ends from the
records, so a status costs what a tenant's total costs, whatever the data size.
Statuses of many budgets are read with one statement per distinct period.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.budgets.models import Budget, BudgetAlert
from service.budgets.periods import Period, Window, period_of
from service.db.types import CREDIT_QUANTUM
from service.usage.queries import Owner, Summary, TimeWindow, credit_summaries

HUNDREDTH = Decimal("0.01")


def owner_of(budget: Budget) -> tuple[Owner, Hashable]:
    """The usage owner whose credits count against the budget."""
    if budget.user_id is None:
        return Owner.TENANT, budget.tenant_id
    return Owner.USER, (budget.tenant_id, budget.user_id)


def window_at(budget: Budget, at: datetime) -> Window:
    """The budget's period that contains `at`."""
    return period_of(at, Period(budget.period), budget.time_zone)


@dataclass(frozen=True)
class Status:
    """One period of one budget, as of `now`."""

    budget: Budget
    window: Window
    used: Summary
    now: datetime
    alerts: list[BudgetAlert] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        """used.total."""
        return self.used.total

    @property
    def remaining(self) -> Decimal:
        """limit - used (negative once over)."""
        return self.budget.limit - self.total

    @property
    def percent_used(self) -> Decimal:
        """used / limit * 100, rounded half-even to 2 decimals."""
        return (self.total * 100 / self.budget.limit).quantize(
            HUNDREDTH, rounding=ROUND_HALF_EVEN
        )

    @property
    def projected(self) -> Decimal:
        """used at the period's end at the rate so far (exact to 9 decimals).

        A period that has ended (or not begun) projects what it used.
        """
        if self.now >= self.window.end or self.now <= self.window.start:
            return self.total
        elapsed = _micros(self.now - self.window.start)
        length = _micros(self.window.length)
        return (self.total * length / elapsed).quantize(
            CREDIT_QUANTUM, rounding=ROUND_HALF_EVEN
        )

    @property
    def exceeded(self) -> bool:
        """used >= limit."""
        return self.total >= self.budget.limit


def _micros(delta: timedelta) -> Decimal:
    return Decimal(
        (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    )


async def used_in(
    session: AsyncSession, pairs: Sequence[tuple[Budget, Window]]
) -> list[Summary]:
    """`used` of each (budget, period), one statement per (owner kind, period)."""
    groups: dict[tuple[Owner, Window], set[Hashable]] = defaultdict(set)
    for budget, window in pairs:
        owner, key = owner_of(budget)
        groups[(owner, window)].add(key)
    sums: dict[tuple[Owner, Window, Hashable], Summary] = {}
    for (owner, window), keys in groups.items():
        found = await credit_summaries(
            session,
            owner,
            sorted(keys, key=repr),
            TimeWindow(window.start, window.end),
        )
        for key in keys:
            sums[(owner, window, key)] = found.get(key, Summary())
    result = []
    for budget, window in pairs:
        owner, key = owner_of(budget)
        result.append(sums[(owner, window, key)])
    return result


async def alerts_in(
    session: AsyncSession, pairs: Sequence[tuple[uuid.UUID, datetime]]
) -> dict[tuple[uuid.UUID, datetime], list[BudgetAlert]]:
    """Alerts of each (budget id, period start), lowest threshold first."""
    result: dict[tuple[uuid.UUID, datetime], list[BudgetAlert]] = defaultdict(list)
    if not pairs:
        return result
    wanted = set(pairs)
    rows = await session.execute(
        select(BudgetAlert)
        .where(BudgetAlert.budget_id.in_(sorted({b for b, _ in wanted})))
        .where(BudgetAlert.period_start.in_(sorted({s for _, s in wanted})))
        .order_by(BudgetAlert.threshold)
    )
    for alert in rows.scalars():
        key = (alert.budget_id, alert.period_start)
        if key in wanted:
            result[key].append(alert)
    return result


async def statuses(
    session: AsyncSession,
    pairs: Sequence[tuple[Budget, Window]],
    now: datetime,
    *,
    with_alerts: bool = True,
) -> list[Status]:
    """The status of each (budget, period)."""
    used = await used_in(session, pairs)
    alerts = (
        await alerts_in(session, [(b.id, w.start) for b, w in pairs])
        if with_alerts and pairs
        else {}
    )
    return [
        Status(b, w, u, now, list(alerts.get((b.id, w.start), [])))
        for (b, w), u in zip(pairs, used, strict=True)
    ]
