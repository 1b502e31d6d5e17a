"""Budgets: validated writes and caller-scoped reads.

Managing (setBudget, deleteBudget; endpoints likewise, service/webhooks) needs an `admin` key;
a key bound to a tenant manages that tenant's only. Reading budgets, statuses
and alerts needs `reader` or `admin`, scoped to the key's tenant. Callers own
the transaction (a writing session for writes).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.budgets import alerts
from service.budgets.models import Budget
from service.budgets.periods import Period
from service.budgets.repository import BudgetRepository, lock_key
from service.db.base import utcnow
from service.errors import BadUserInput
from service.uow import UnitOfWork
from service.usage.queries import existing_tenants, existing_users
from service.validation import check_credits, check_id, check_time_zone
from service.webhooks.service import require_manage

DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_THRESHOLD = 1000
MAX_THRESHOLDS = 20


@dataclass(frozen=True)
class BudgetIn:
    """setBudget's input, as given."""

    tenant_id: str
    user_id: str | None
    period: Period
    limit: Decimal
    time_zone: str = "UTC"
    thresholds: Sequence[int] | None = None
    enforce: bool = False


def check_thresholds(field: str, values: Sequence[int] | None) -> list[int]:
    """Distinct percents from 1 to 1000, sorted."""
    if values is None:
        return list(DEFAULT_THRESHOLDS)
    if len(values) > MAX_THRESHOLDS:
        raise BadUserInput(field, f"at most {MAX_THRESHOLDS} thresholds")
    for value in values:
        if not 1 <= value <= MAX_THRESHOLD:
            raise BadUserInput(field, f"must be between 1 and {MAX_THRESHOLD}")
    if len(set(values)) != len(values):
        raise BadUserInput(field, "must not repeat a threshold")
    return sorted(values)


class BudgetService:
    """Writes of the budgets domain."""

    async def set_budget(
        self, uow: UnitOfWork, principal: Principal, given: BudgetIn
    ) -> tuple[Budget, list[alerts.Crossed]]:
        """Create or update the budget of (tenant, user, period).

        Returns the alerts the (new) limit and thresholds cross at once in
        the current period, announced like usage's (webhooks, subscription).
        """
        session = uow.session
        tenant_id = check_id("input.tenantId", given.tenant_id)
        require_manage(principal, tenant_id)
        user_id = (
            None if given.user_id is None else check_id("input.userId", given.user_id)
        )
        limit = check_credits("input.limit", given.limit)
        if limit <= 0:
            raise BadUserInput("input.limit", "must be greater than 0")
        time_zone = check_time_zone("input.timeZone", given.time_zone)
        thresholds = check_thresholds("input.thresholds", given.thresholds)
        if not await existing_tenants(session, [tenant_id]):
            raise BadUserInput("input.tenantId", f"unknown tenant {tenant_id!r}")
        if user_id is not None and not await existing_users(
            session, [(tenant_id, user_id)]
        ):
            raise BadUserInput("input.userId", f"unknown user {user_id!r}")
        repo = BudgetRepository(session)
        await repo.lock([lock_key("budget", tenant_id, user_id or "", given.period)])
        budget = await repo.by_owner(tenant_id, user_id, given.period.value)
        now = utcnow()
        if budget is None:
            budget = Budget(
                tenant_id=tenant_id,
                user_id=user_id,
                user_key=user_id or "",
                period=given.period.value,
                created_at=now,
            )
            session.add(budget)
        budget.limit = limit
        budget.time_zone = time_zone
        budget.thresholds = thresholds
        budget.enforce = given.enforce
        budget.updated_at = now
        await session.flush()
        crossed = await alerts.evaluate(session, [(budget, now)], now)
        await alerts.announce(uow, crossed)
        return budget, crossed

    async def delete_budget(
        self, session: AsyncSession, principal: Principal, budget_id: uuid.UUID
    ) -> bool:
        """Delete a budget (and its alerts); False when there is none to see."""
        repo = BudgetRepository(session)
        budget = (await repo.by_ids([budget_id])).get(budget_id)
        if budget is None or not principal.sees_tenant(budget.tenant_id):
            require_manage(principal, principal.tenant_id)
            return False
        require_manage(principal, budget.tenant_id)
        return await repo.delete_budget(budget_id)


class BudgetReader:
    """Reads of the budgets domain, scoped to the caller."""

    def __init__(self, principal: Principal) -> None:
        principal.require_read()
        self.principal = principal

    def visible(self, budget: Budget | None) -> Budget | None:
        """The budget, or None when the caller may not see it."""
        if budget is None or not self.principal.sees_tenant(budget.tenant_id):
            return None
        return budget

    async def budget(
        self, session: AsyncSession, budget_id: uuid.UUID
    ) -> Budget | None:
        """One budget, or None."""
        found = await BudgetRepository(session).by_ids([budget_id])
        return self.visible(found.get(budget_id))

    async def of_tenants(
        self, session: AsyncSession, tenant_ids: Sequence[str]
    ) -> list[Budget]:
        """The visible tenants' own and their users' budgets."""
        visible = [t for t in tenant_ids if self.principal.sees_tenant(t)]
        return await BudgetRepository(session).of_tenants(visible)


budget_service = BudgetService()
