"""Budget and webhook endpoint mutations, and the `budget(id:)` query."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from service.budgets.periods import Period
from service.budgets.service import BudgetIn, BudgetReader, budget_service
from service.errors import BadUserInput
from service.graphql.budget_types import Budget, WebhookEndpoint
from service.graphql.context import Info
from service.graphql.queries import parse_uuid
from service.uow import unit_of_work
from service.webhooks.service import endpoint_service


@strawberry.input(description="A budget of a tenant, or of one user inside it.")
class SetBudgetInput:
    """setBudget input."""

    tenant_id: strawberry.ID = strawberry.field(description="The tenant.")
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="The user; left out: the whole tenant."
    )
    period: Period = strawberry.field(description="The calendar period.")
    limit: Decimal = strawberry.field(description="Credits per period, greater than 0.")
    time_zone: str | None = strawberry.field(
        default="UTC", description="IANA name of the zone the periods follow."
    )
    thresholds: list[int] | None = strawberry.field(
        default_factory=lambda: [50, 80, 100],
        description="Percents of limit that raise an alert: 1 to 1000, distinct.",
    )
    enforce: bool | None = strawberry.field(
        default=False,
        description=(
            "true: createInteraction, requestTranscript, requestDocument, "
            "requestStream, requestFacts, requestCoding and requestDictation are "
            "refused (BUDGET_EXCEEDED) once the period's usage reaches limit."
        ),
    )


@strawberry.input(description="A receiver of signed events.")
class WebhookEndpointInput:
    """createWebhookEndpoint input."""

    url: str = strawberry.field(
        description="http(s) URL; private addresses need WEBHOOK_ALLOW_PRIVATE_URLS."
    )
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "Only this tenant's events; left out: every tenant's (a key bound to "
            "a tenant: its own)."
        ),
    )
    event_types: list[str] | None = strawberry.field(
        default_factory=lambda: ["budget.threshold_crossed"],
        description="Event types to receive.",
    )


IdArg = Annotated[strawberry.ID, strawberry.argument(description="The id.")]


@strawberry.type(description="Managing budgets and webhook endpoints.")
class BudgetMutation:
    """Budget mutations."""

    @strawberry.mutation(
        description=(
            "Create the budget of (tenant, user, period), or update it when it "
            "exists. Thresholds the new settings cross in the current period "
            "raise their alerts at once."
        )
    )
    async def set_budget(
        self,
        info: Info,
        input: Annotated[
            SetBudgetInput, strawberry.argument(description="The budget.")
        ],
    ) -> Budget:
        given = BudgetIn(
            tenant_id=str(input.tenant_id),
            user_id=None if input.user_id is None else str(input.user_id),
            period=Period(input.period),
            limit=input.limit,
            time_zone="UTC" if input.time_zone is None else input.time_zone,
            thresholds=input.thresholds,
            enforce=bool(input.enforce),
        )
        async with unit_of_work(info.context.db, info.context.caller) as uow:
            row, _crossed = await budget_service.set_budget(
                uow, info.context.caller, given
            )
        return Budget.of(row)

    @strawberry.mutation(
        description="Delete a budget and its alerts; false if there is none."
    )
    async def delete_budget(self, info: Info, id: IdArg) -> bool:
        budget_id = parse_uuid("id", str(id))
        async with unit_of_work(info.context.db, info.context.caller) as uow:
            return await budget_service.delete_budget(
                uow.session, info.context.caller, budget_id
            )

    @strawberry.mutation(
        description="Register a receiver; the answer carries its secret, once."
    )
    async def create_webhook_endpoint(
        self,
        info: Info,
        input: Annotated[
            WebhookEndpointInput, strawberry.argument(description="The endpoint.")
        ],
    ) -> WebhookEndpoint:
        async with unit_of_work(info.context.db, info.context.caller) as uow:
            row = await endpoint_service.create_endpoint(
                uow.session,
                info.context.caller,
                url=input.url,
                tenant_id=None if input.tenant_id is None else str(input.tenant_id),
                event_types=input.event_types,
                allow_private=info.context.settings.webhook_allow_private_urls,
            )
        return WebhookEndpoint.of(row, with_secret=True)

    @strawberry.mutation(
        description="Delete an endpoint and its deliveries; false if there is none."
    )
    async def delete_webhook_endpoint(self, info: Info, id: IdArg) -> bool:
        endpoint_id = parse_uuid("id", str(id))
        async with unit_of_work(info.context.db, info.context.caller) as uow:
            return await endpoint_service.delete_endpoint(
                uow.session, info.context.caller, endpoint_id
            )


@strawberry.type(description="Reading budgets and webhook endpoints.")
class BudgetQuery:
    """Budget queries."""

    @strawberry.field(description="One budget, or null if unknown or not visible.")
    async def budget(self, info: Info, id: IdArg) -> Budget | None:
        reader = BudgetReader(info.context.caller)
        try:
            budget_id = parse_uuid("id", str(id))
        except BadUserInput:
            return None
        async with info.context.db.read() as session:
            row = await reader.budget(session, budget_id)
        return None if row is None else Budget.of(row)

    @strawberry.field(
        description=(
            "One webhook endpoint the caller manages (admin keys), or null; "
            "its secret is not shown."
        )
    )
    async def webhook_endpoint(self, info: Info, id: IdArg) -> WebhookEndpoint | None:
        caller = info.context.caller
        caller.require_read()
        try:
            endpoint_id = parse_uuid("id", str(id))
        except BadUserInput:
            return None
        async with info.context.db.read() as session:
            row = await endpoint_service.endpoint(session, caller, endpoint_id)
        return None if row is None else WebhookEndpoint.of(row)
