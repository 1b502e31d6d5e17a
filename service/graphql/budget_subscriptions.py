"""The `budgetAlerts(tenantId:)` subscription (graphql-transport-ws)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from service.budgets.feed import alert_feed
from service.budgets.models import BudgetAlert as AlertRow
from service.budgets.service import BudgetReader
from service.errors import Forbidden
from service.graphql.budget_types import BudgetAlert
from service.graphql.context import Info
from service.state import AppState
from service.validation import check_id


@strawberry.type(description="Live budget alerts.")
class BudgetSubscription:
    """Budget subscriptions."""

    @strawberry.subscription(
        description=(
            "Each new alert of the tenant's budgets (its own and its users'), right "
            "after the transaction that crossed the threshold commits, whichever API "
            "or worker process decided it (on SQLite: this process's alerts only). "
            "Delivery is at most once: re-read statuses after (re-)subscribing."
        )
    )
    async def budget_alerts(
        self,
        info: Info,
        tenant_id: Annotated[
            strawberry.ID, strawberry.argument(description="The tenant to watch.")
        ],
    ) -> AsyncGenerator[BudgetAlert]:
        reader = BudgetReader(info.context.caller)
        tenant = check_id("tenantId", tenant_id)
        if not reader.principal.sees_tenant(tenant):
            raise Forbidden("this key is bound to another tenant")
        state: AppState = info.context.extras["state"]
        await state.feed.wait_listening()
        async with alert_feed.subscribe(tenant) as alerts:
            async for alert in alerts:
                async with info.context.db.read() as session:
                    budget = await reader.budget(session, _uuid(alert.budget_id))
                if budget is None:  # deleted since
                    continue
                row = AlertRow(
                    id=_uuid(alert.alert_id),
                    budget_id=budget.id,
                    period_start=alert.period_start,
                    threshold=alert.threshold,
                    crossed_at=alert.crossed_at,
                    used=alert.used,
                )
                yield BudgetAlert.of(row, budget)


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)
