"""Deciding threshold alerts inside the transaction that writes the usage.

A threshold t of a budget is crossed in a period when the period's
`used.total >= limit * t / 100`. The decision runs in the writing transaction
(of usage, of a move between owners, or of `setBudget`), after the records and
rollups are written, under a lock per (budget, period) taken before the usage
is read: of two writers whose records together cross a threshold, the second
to take the lock sees the first's commit, so the alert is never missed; the
UNIQUE (budget, period start, threshold) constraint makes it exactly one.
Late usage counts in the period of its `createdAt` and alerts there. Alerts
are never taken back.

`announce` hands the new alerts on in the same transaction: a webhook
delivery per matching endpoint (the outbox, service/webhooks/delivery.py) and
a `BudgetAlertCrossed` event, whose after-commit handler feeds the
`budgetAlerts` subscription (service/budgets/handlers.py).

Locks: callers take these (budget, period) locks last, after every usage,
interaction and rollup lock of their transaction, and all of them in one
call (sorted keys), so no writer holds a budget lock while it waits for
anything another writer holds.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from service.budgets.feed import AlertFacts
from service.budgets.models import Budget, BudgetAlert
from service.budgets.periods import Window
from service.budgets.repository import BudgetRepository, lock_key
from service.budgets.status import used_in, window_at
from service.db.types import credits_text
from service.events import DomainEvent
from service.webhooks.delivery import enqueue_event
from service.webhooks.service import EVENT_THRESHOLD_CROSSED

if TYPE_CHECKING:
    from service.uow import UnitOfWork


class Owned(Protocol):
    """A usage record as far as budgets care."""

    @property
    def tenant_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


@dataclass(frozen=True)
class Crossed:
    """A new alert and its budget."""

    alert: BudgetAlert
    budget: Budget

    def payload(self) -> dict[str, Any]:
        """The event body (decimals as strings, times in UTC with Z)."""
        alert, budget = self.alert, self.budget
        return {
            "type": "budget.threshold_crossed",
            "timestamp": iso(alert.crossed_at),
            "data": {
                "alertId": str(alert.id),
                "budgetId": str(budget.id),
                "tenantId": budget.tenant_id,
                "userId": budget.user_id,
                "period": budget.period,
                "periodStart": iso(alert.period_start),
                "periodEnd": iso(alert.period_end),
                "threshold": alert.threshold,
                "limit": credits_text(budget.limit),
                "used": credits_text(alert.used),
                "crossedAt": iso(alert.crossed_at),
            },
        }

    def facts(self) -> AlertFacts:
        """The alert as the subscription's feed carries it."""
        return AlertFacts(
            alert_id=str(self.alert.id),
            budget_id=str(self.budget.id),
            tenant_id=self.budget.tenant_id,
            threshold=self.alert.threshold,
            period_start=self.alert.period_start,
            crossed_at=self.alert.crossed_at,
            used=self.alert.used,
        )


@dataclass(frozen=True)
class BudgetAlertCrossed(DomainEvent):
    """New alerts, stored in the raising transaction (each once, ever)."""

    alerts: Sequence[AlertFacts]


async def announce(uow: UnitOfWork, crossed: Sequence[Crossed]) -> None:
    """Webhook deliveries (outbox) and a `BudgetAlertCrossed` for new alerts."""
    if not crossed:
        return
    for item in crossed:
        await enqueue_event(
            uow, item.budget.tenant_id, EVENT_THRESHOLD_CROSSED, item.payload()
        )
    uow.raise_event(BudgetAlertCrossed(tuple(item.facts() for item in crossed)))


def iso(instant: datetime) -> str:
    """ISO-8601 in UTC with Z."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def evaluate(
    session: AsyncSession, pairs: Sequence[tuple[Budget, datetime]], now: datetime
) -> list[Crossed]:
    """Insert the alerts that (budget, period containing the instant) now cross."""
    return await decide(
        session, [(budget, window_at(budget, at)) for budget, at in pairs], now
    )


async def decide(
    session: AsyncSession, periods: Sequence[tuple[Budget, Window]], now: datetime
) -> list[Crossed]:
    """Insert the alerts that these (budget, period)s now cross."""
    unique: dict[tuple[Any, datetime], tuple[Budget, Window]] = {}
    for budget, window in periods:
        if budget.thresholds:
            unique.setdefault((budget.id, window.start), (budget, window))
    if not unique:
        return []
    repo = BudgetRepository(session)
    done = await repo.crossed(list(unique))
    todo = [
        (budget, window)
        for (budget_id, start), (budget, window) in unique.items()
        if any((budget_id, start, t) not in done for t in budget.thresholds)
    ]
    if not todo:
        return []  # every threshold crossed already: no lock, no usage read
    await repo.lock(lock_key("alerts", b.id, w.start) for b, w in todo)
    done = await repo.crossed([(b.id, w.start) for b, w in todo])
    used = await used_in(session, todo)
    crossed: list[Crossed] = []
    for (budget, window), summary in zip(todo, used, strict=True):
        total = summary.total
        for threshold in budget.thresholds:
            if (budget.id, window.start, threshold) in done:
                continue
            if total * 100 < budget.limit * threshold:
                break  # thresholds are sorted
            alert = await repo.insert_alert(budget, window, threshold, now, total)
            if alert is not None:
                crossed.append(Crossed(alert, budget))
    return crossed


class Periods:
    """The periods of one (period kind, time zone) met so far, sorted by start."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.starts: list[datetime] = []
        self.windows: list[Window] = []

    def of(self, at: datetime) -> Window:
        """The period containing `at` (periods partition time, so a known
        period that contains it is the one)."""
        index = bisect.bisect_right(self.starts, at) - 1
        if index >= 0 and at < self.windows[index].end:
            return self.windows[index]
        window = window_at(self.budget, at)
        index = bisect.bisect_left(self.starts, window.start)
        self.starts.insert(index, window.start)
        self.windows.insert(index, window)
        return window


async def for_usage(
    session: AsyncSession, records: Iterable[Owned], now: datetime
) -> list[Crossed]:
    """Alerts crossed by newly stored (or newly attributed) usage records."""
    owned = [r for r in records if r.tenant_id is not None and r.user_id is not None]
    if not owned:
        return []
    owners = sorted({(r.tenant_id or "", r.user_id or "") for r in owned})
    budgets = await BudgetRepository(session).of_owners(owners)
    if not budgets:
        return []
    # Each owner's budgets: its tenant's own ("") and its user's.
    of_owner: dict[tuple[str, str], list[Budget]] = {}
    for budget in budgets:
        if budget.thresholds:
            of_owner.setdefault((budget.tenant_id, budget.user_key), []).append(budget)
    # The periods the records fall in, computed once per distinct (period
    # kind, time zone) and period, not once per record and budget (a batch
    # of 10,000 mostly shares a few); `Periods.of` is exact.
    calendars: dict[tuple[str, str], Periods] = {}
    found: dict[tuple[Any, datetime], tuple[Budget, Window]] = {}
    for record in owned:
        tenant, user = record.tenant_id or "", record.user_id or ""
        for budget in (
            *of_owner.get((tenant, ""), ()),
            *of_owner.get((tenant, user), ()),
        ):
            calendar = calendars.get((budget.period, budget.time_zone))
            if calendar is None:
                calendar = Periods(budget)
                calendars[(budget.period, budget.time_zone)] = calendar
            window = calendar.of(record.created_at)
            found.setdefault((budget.id, window.start), (budget, window))
    return await decide(session, list(found.values()), now)
