"""Enforced budgets: Corti job mutations are refused once a period is used up.

A tenant (or one of its users) whose enforced budget's current period has
`used.total >= limit` gets BUDGET_EXCEEDED from createInteraction,
requestTranscript, requestDocument, requestStream, requestFacts, requestCoding
and requestDictation, and no job is created.
Usage that arrives anyway (webhooks, jobs queued earlier) is still recorded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.budgets.models import Budget
from service.budgets.repository import BudgetRepository
from service.budgets.status import statuses, window_at
from service.db.base import utcnow
from service.db.types import credits_text
from service.errors import BadUserInput, BudgetExceeded
from service.usage.queries import interactions_by_id
from service.validation import check_id


async def require_within_budget(
    session: AsyncSession, tenant_id: str, user_id: str | None, now: datetime
) -> None:
    """BUDGET_EXCEEDED when an enforced budget of the tenant or user is used up."""
    owners = [(tenant_id, user_id)] if user_id is not None else []
    repo = BudgetRepository(session)
    budgets: list[Budget] = (
        await repo.of_owners(owners) if owners else await repo.of_tenants([tenant_id])
    )
    enforced = [
        b
        for b in budgets
        if b.enforce
        and b.tenant_id == tenant_id
        and (b.user_id is None or b.user_id == user_id)
    ]
    if not enforced:
        return
    found = await statuses(
        session, [(b, window_at(b, now)) for b in enforced], now, with_alerts=False
    )
    for status in found:
        if status.exceeded:
            budget = status.budget
            whom = (
                f"user {budget.user_id!r} of tenant {budget.tenant_id!r}"
                if budget.user_id
                else f"tenant {budget.tenant_id!r}"
            )
            raise BudgetExceeded(
                f"the {budget.period.lower()} budget of {whom} is used up "
                f"({credits_text(status.total)} of {credits_text(budget.limit)} credits)",
                budgetId=str(budget.id),
                periodEnd=status.window.end.isoformat().replace("+00:00", "Z"),
            )


async def guard_job(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant_id: str | None = None,
    user_id: str | None = None,
    interaction_id: str | None = None,
) -> None:
    """The budget check of a Corti job mutation, run before its job is stored.

    Only for callers that may write there: for others (and for unknown or bad
    ids) the job service's own FORBIDDEN / NOT_FOUND / BAD_USER_INPUT answer
    comes first, so an over-budget tenant is not revealed to another's key.
    """
    if not principal.can_write:
        return
    try:
        if interaction_id is not None:
            found = await interactions_by_id(
                session, [check_id("interactionId", interaction_id)]
            )
            if interaction_id not in found:
                return
            tenant_id = found[interaction_id].tenant_id
            user_id = found[interaction_id].user_id
        if tenant_id is None:
            return
        tenant_id = check_id("tenantId", tenant_id)
        user_id = None if user_id is None else check_id("userId", user_id)
    except BadUserInput:
        return
    if not principal.sees_tenant(tenant_id):
        return
    await require_within_budget(session, tenant_id, user_id, utcnow())
