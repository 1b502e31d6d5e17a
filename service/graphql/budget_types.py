"""GraphQL types of budgets, alerts and webhook endpoints.

Statuses are read through one per-request loader, so a list of budgets with
their statuses costs one statement per distinct period, not one per budget.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.dataloader import DataLoader

from service.budgets import models
from service.budgets.periods import Period, Window, latest
from service.budgets.service import BudgetReader
from service.budgets.status import Status, statuses, window_at
from service.db.base import utcnow
from service.errors import BadUserInput
from service.graphql.context import Info
from service.graphql.enums import described_enum
from service.graphql.types import CreditSummary
from service.webhooks import models as webhook_models
from service.webhooks.repository import WebhookRepository

if TYPE_CHECKING:
    from service.graphql.types import Tenant, User

MAX_HISTORY = 100
TenantRef = Annotated["Tenant", strawberry.lazy("service.graphql.types")]
UserRef = Annotated["User", strawberry.lazy("service.graphql.types")]


class DeliveryStatus(StrEnum):
    """Where a webhook delivery stands (the column's values)."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


described_enum(
    Period,
    "BudgetPeriod",
    "Calendar periods in the budget's time zone; weeks start on Monday.",
    {
        "DAY": "From local midnight to the next (23 or 25 hours across DST).",
        "WEEK": "From Monday's local midnight to the next Monday's.",
        "MONTH": "From local midnight of the 1st to that of the next month's 1st.",
    },
)
described_enum(
    DeliveryStatus,
    "WebhookDeliveryStatus",
    "Where a webhook delivery stands.",
    {
        "PENDING": "Not delivered yet; attempts go on with backoff.",
        "SUCCEEDED": "The receiver answered 2xx.",
        "FAILED": "Given up: attempts spent, or the endpoint answered 410 Gone.",
    },
)


def _status_loader(info: Info) -> DataLoader[tuple[uuid.UUID, Window], Status]:
    """The request's status loader (created on first use)."""
    extras = info.context.extras
    loader = extras.get("budget_status")
    if loader is None:
        budgets: dict[uuid.UUID, models.Budget] = extras.setdefault("budget_rows", {})
        now = utcnow()

        async def load(keys: Sequence[tuple[uuid.UUID, Window]]) -> list[Status]:
            async with info.context.db.read() as session:
                return await statuses(session, [(budgets[b], w) for b, w in keys], now)

        loader = DataLoader(load_fn=load)
        extras["budget_status"] = loader
    return loader


async def _load_status(info: Info, row: models.Budget, window: Window) -> Status:
    info.context.extras.setdefault("budget_rows", {})[row.id] = row
    return await _status_loader(info).load((row.id, window))


@strawberry.type(description="A threshold of a budget crossed in one period.")
class BudgetAlert:
    """An alert."""

    id: strawberry.ID = strawberry.field(description="The alert's id.")
    threshold: int = strawberry.field(description="The percent of limit crossed.")
    period_start: datetime = strawberry.field(
        description="Start of the period in which it was crossed."
    )
    crossed_at: datetime = strawberry.field(
        description="When the usage that crossed it was recorded."
    )
    used: Decimal = strawberry.field(
        description="The period's used.total right after that usage."
    )
    row: strawberry.Private[models.Budget]

    @classmethod
    def of(cls, alert: models.BudgetAlert, budget: models.Budget) -> BudgetAlert:
        """Map an alert row with its budget."""
        return cls(
            id=strawberry.ID(str(alert.id)),
            threshold=alert.threshold,
            period_start=alert.period_start,
            crossed_at=alert.crossed_at,
            used=alert.used,
            row=budget,
        )

    @strawberry.field(description="The budget whose threshold was crossed.")
    def budget(self) -> Budget:
        return Budget.of(self.row)


@strawberry.type(description="A budget's consumption in one period.")
class BudgetStatus:
    """A status."""

    status: strawberry.Private[Status]

    @strawberry.field(description="Start of the period (inclusive).")
    def period_start(self) -> datetime:
        return self.status.window.start

    @strawberry.field(description="End of the period (exclusive).")
    def period_end(self) -> datetime:
        return self.status.window.end

    @strawberry.field(
        description="Credits used in the period: the same sum as credits(range:)."
    )
    def used(self) -> CreditSummary:
        return CreditSummary.from_summary(self.status.used)

    @strawberry.field(description="The limit minus used.total; negative once over.")
    def remaining(self) -> Decimal:
        return self.status.remaining

    @strawberry.field(
        description="The used.total / limit * 100, rounded half-even to 2 decimals."
    )
    def percent_used(self) -> Decimal:
        return self.status.percent_used

    @strawberry.field(
        description=(
            "Expected used.total at periodEnd at the period's rate so far "
            "(used.total times period length over time elapsed, to 9 decimals); "
            "equals used.total once the period has ended."
        )
    )
    def projected(self) -> Decimal:
        return self.status.projected

    @strawberry.field(
        description="The thresholds crossed in this period, lowest first."
    )
    def alerts(self) -> list[BudgetAlert]:
        return [BudgetAlert.of(a, self.status.budget) for a in self.status.alerts]


HistoryArg = Annotated[
    int, strawberry.argument(description="How many periods, 1 to 100.")
]
AtArg = Annotated[
    datetime | None,
    strawberry.argument(description="An instant inside the period; default: now."),
]


@strawberry.type(
    description="A credit allowance per calendar period for a tenant or one user."
)
class Budget:
    """A budget."""

    id: strawberry.ID = strawberry.field(description="The budget's id.")
    period: Period = strawberry.field(description="The calendar period.")
    limit: Decimal = strawberry.field(description="Credits per period.")
    time_zone: str = strawberry.field(description="IANA zone of the periods.")
    thresholds: list[int] = strawberry.field(
        description="Percents of limit that raise an alert, lowest first."
    )
    enforce: bool = strawberry.field(
        description="Whether Corti job mutations are refused once used >= limit."
    )
    row: strawberry.Private[models.Budget]

    @classmethod
    def of(cls, row: models.Budget) -> Budget:
        """Map a budget row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            period=Period(row.period),
            limit=row.limit,
            time_zone=row.time_zone,
            thresholds=list(row.thresholds),
            enforce=row.enforce,
            row=row,
        )

    @strawberry.field(description="The budget's tenant.")
    def tenant(self) -> TenantRef:
        from service.graphql.types import Tenant

        return Tenant(id=strawberry.ID(self.row.tenant_id))

    @strawberry.field(description="The budget's user; null for a tenant budget.")
    def user(self) -> UserRef | None:
        from service.graphql.types import User

        if self.row.user_id is None:
            return None
        return User(id=strawberry.ID(self.row.user_id), tenant_id=self.row.tenant_id)

    @strawberry.field(description="The period that contains `at` (default: now).")
    async def status(self, info: Info, at: AtArg = None) -> BudgetStatus:
        BudgetReader(info.context.caller)
        window = window_at(self.row, at if at is not None else utcnow())
        return BudgetStatus(status=await _load_status(info, self.row, window))

    @strawberry.field(
        description="The latest periods, newest first, the current one included."
    )
    async def history(self, info: Info, last: HistoryArg = 12) -> list[BudgetStatus]:
        BudgetReader(info.context.caller)
        if not 1 <= last <= MAX_HISTORY:
            raise BadUserInput("last", f"must be between 1 and {MAX_HISTORY}")
        windows = latest(utcnow(), Period(self.row.period), self.row.time_zone, last)
        info.context.extras.setdefault("budget_rows", {})[self.row.id] = self.row
        found = await _status_loader(info).load_many(
            [(self.row.id, w) for w in windows]
        )
        return [BudgetStatus(status=s) for s in found]


@strawberry.type(description="One event sent (or being sent) to one endpoint.")
class WebhookDelivery:
    """A delivery."""

    id: strawberry.ID = strawberry.field(
        description="The webhook-id header of every attempt."
    )
    event_type: str = strawberry.field(
        description="The event type, e.g. budget.threshold_crossed."
    )
    status: DeliveryStatus = strawberry.field(description="Where it stands.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed; null once delivered."
    )
    created_at: datetime = strawberry.field(description="When the event was raised.")
    delivered_at: datetime | None = strawberry.field(
        description="When a 2xx answer came; null until then."
    )

    @classmethod
    def of(cls, row: webhook_models.WebhookDelivery) -> WebhookDelivery:
        """Map a delivery row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            event_type=row.event_type,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


@strawberry.type(description="A receiver of signed events (Standard Webhooks).")
class WebhookEndpoint:
    """An endpoint."""

    id: strawberry.ID = strawberry.field(description="The endpoint's id.")
    url: str = strawberry.field(description="Where events are POSTed.")
    event_types: list[str] = strawberry.field(description="Event types it receives.")
    secret: str | None = strawberry.field(
        description=(
            '"whsec_" + base64 of 32 random bytes; only in createWebhookEndpoint\'s '
            "answer, null in later reads."
        )
    )
    disabled: bool = strawberry.field(
        description="True once the receiver answered 410 Gone; it gets nothing more."
    )
    row: strawberry.Private[webhook_models.WebhookEndpoint]

    @classmethod
    def of(
        cls, row: webhook_models.WebhookEndpoint, *, with_secret: bool = False
    ) -> WebhookEndpoint:
        """Map an endpoint row (the secret only when just created)."""
        return cls(
            id=strawberry.ID(str(row.id)),
            url=row.url,
            event_types=list(row.event_types),
            secret=row.secret if with_secret else None,
            disabled=row.disabled_at is not None,
            row=row,
        )

    @strawberry.field(
        description="Its tenant; null: it receives every tenant's events."
    )
    def tenant(self) -> TenantRef | None:
        from service.graphql.types import Tenant

        if self.row.tenant_id is None:
            return None
        return Tenant(id=strawberry.ID(self.row.tenant_id))

    @strawberry.field(description="Its deliveries, newest first.")
    async def deliveries(
        self,
        info: Info,
        first: Annotated[
            int, strawberry.argument(description="How many, 0 to 100.")
        ] = 50,
    ) -> list[WebhookDelivery]:
        if not 0 <= first <= 100:
            raise BadUserInput("first", "must be between 0 and 100")
        async with info.context.db.read() as session:
            rows = await WebhookRepository(session).deliveries([self.row.id], first)
        return [WebhookDelivery.of(r) for r in rows[self.row.id]]


def _budgets_loader(info: Info) -> DataLoader[tuple[str, str | None], list[Budget]]:
    """Budgets by (tenant, None) or (tenant, user): one statement per batch."""
    extras = info.context.extras
    loader = extras.get("budgets_of")
    if loader is None:
        reader = BudgetReader(info.context.caller)

        async def load(keys: Sequence[tuple[str, str | None]]) -> list[list[Budget]]:
            async with info.context.db.read() as session:
                rows = await reader.of_tenants(session, sorted({t for t, _ in keys}))
            return [
                [
                    Budget.of(r)
                    for r in rows
                    if r.tenant_id == tenant and (user is None or r.user_id == user)
                ]
                for tenant, user in keys
            ]

        loader = DataLoader(load_fn=load)
        extras["budgets_of"] = loader
    return loader


async def budgets_of(
    info: Info, tenant_id: str, user_id: str | None = None
) -> list[Budget]:
    """Tenant.budgets (the tenant's own and its users') / User.budgets."""
    BudgetReader(info.context.caller)
    return await _budgets_loader(info).load((tenant_id, user_id))
