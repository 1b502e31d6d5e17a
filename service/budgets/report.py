"""The quota consumption report: one row per budget and period overlapping a range.

`GET /export/budgets.csv?tenant=&from=&to=` (service/export/routes.py). Left
out, `from`/`to` default to now: each budget's current period. Usage is read
like a status (rollups, one statement per distinct period).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.budgets.alerts import iso
from service.budgets.models import Budget
from service.budgets.periods import Period, Window, overlapping, period_of
from service.budgets.repository import BudgetRepository
from service.budgets.status import Status, statuses
from service.db.types import credits_text
from service.errors import BadUserInput
from service.usage.queries import existing_tenants

COLUMNS = (
    "tenantId",
    "userId",
    "period",
    "periodStart",
    "periodEnd",
    "limit",
    "used",
    "remaining",
    "percentUsed",
    "thresholdsCrossed",
)
MAX_ROWS = 100_000


def _windows(
    budget: Budget, start: datetime | None, end: datetime | None, now: datetime
) -> list[Window]:
    """Periods overlapping [start, end); an empty range: the period of its instant."""
    period = Period(budget.period)
    first = (
        start if start is not None else (end if end is not None and end < now else now)
    )
    last = end if end is not None else max(now, first)
    found = overlapping(first, last, period, budget.time_zone)
    return found or [period_of(first, period, budget.time_zone)]


async def rows(
    session: AsyncSession,
    tenant_ids: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> list[tuple[object, ...]]:
    """Report rows, by tenant, user ("" first), period and period start.

    `tenant_ids` None: every tenant's budgets.
    """
    repo = BudgetRepository(session)
    if tenant_ids is None:
        budgets = await repo.all_budgets()
    else:
        budgets = await repo.of_tenants(tenant_ids)
    pairs: list[tuple[Budget, Window]] = []
    for budget in budgets:
        for window in _windows(budget, start, end, now):
            pairs.append((budget, window))
            if len(pairs) > MAX_ROWS:
                raise BadUserInput("from", f"the report would exceed {MAX_ROWS} rows")
    found = await statuses(session, pairs, now, with_alerts=False)
    return [_values(s) for s in found]


async def tenant_known(session: AsyncSession, tenant_id: str) -> bool:
    """Whether the tenant exists."""
    return bool(await existing_tenants(session, [tenant_id]))


def _values(status: Status) -> tuple[object, ...]:
    budget = status.budget
    total = status.total
    crossed = [t for t in budget.thresholds if total * 100 >= budget.limit * t]
    return (
        budget.tenant_id,
        budget.user_id,
        budget.period,
        iso(status.window.start),
        iso(status.window.end),
        credits_text(budget.limit),
        credits_text(total),
        credits_text(status.remaining),
        credits_text(status.percent_used),
        ";".join(str(t) for t in crossed),
    )
