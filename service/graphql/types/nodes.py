"""The node types: tenants, users, interactions, usage records and their pages.

Resolvers parse arguments and call loaders only.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from graphql import GraphQLFieldResolver
from strawberry.types.nodes import FragmentSpread, InlineFragment, Selection

from service.db import models
from service.graphql import args
from service.graphql.context import Info
from service.graphql.enums import Granularity
from service.graphql.types.connections import Connection
from service.graphql.types.credits import CreditSummary, UsageBucket
from service.graphql.types.inputs import (
    AfterArg,
    BucketRangeArg,
    FirstArg,
    GranularityArg,
    RangeArg,
    TimeRange,
    ZoneArg,
    window_of,
)
from service.usage.queries.models import (
    InteractionRow,
    Owner,
    Summary,
    TimeWindow,
    UserOrder,
)
from service.usage.records import RecordRow, Source

if TYPE_CHECKING:
    from service.graphql.budget_types import Budget

BudgetRef = Annotated["Budget", strawberry.lazy("service.graphql.budget_types")]


async def _credits(
    info: Info, owner: Owner, key: object, range: TimeRange | None
) -> CreditSummary:
    _ = info.context.usage  # the read service, so FORBIDDEN before bad arguments
    summary = await info.context.loaders.summary.load(((owner, window_of(range)), key))
    return CreditSummary.from_summary(summary)


def _asks_for(selections: list[Selection], path: tuple[str, ...]) -> bool:
    """Whether the selection reaches the fields along `path` (through fragments)."""
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            if _asks_for(selection.selections, path):
                return True
        elif selection.name == path[0] and (
            len(path) == 1 or _asks_for(selection.selections, path[1:])
        ):
            return True
    return False


async def _usage(
    info: Info,
    owner: Owner,
    key: object,
    range: TimeRange,
    granularity: Granularity,
    time_zone: str,
) -> list[UsageBucket]:
    _ = info.context.usage  # the read service, so FORBIDDEN before bad arguments
    window = args.buckets(range.from_, range.to, granularity.value, time_zone)
    params = (owner, window, granularity.value, time_zone, args.MAX_BUCKETS)
    result = await info.context.loaders.buckets.load((params, key))
    return [UsageBucket.from_bucket(b) for b in result]


async def _interactions(
    info: Info,
    owner: Owner,
    key: object,
    range: TimeRange | None,
    first: int,
    after: str | None,
) -> InteractionConnection:
    _ = info.context.usage  # the read service, so FORBIDDEN before bad arguments
    limit, offset = args.page(first, after)
    window = window_of(range)
    params = (owner, window, limit, offset)
    result = await info.context.loaders.interactions.load((params, key))
    nodes = [Interaction.from_model(row) for row in result.items]
    selections = info.selected_fields[0].selections
    if nodes and (
        _asks_for(selections, ("nodes", "credits"))
        or _asks_for(selections, ("edges", "node", "credits"))
    ):
        # Fetch the nodes' credits over the page's range now (batched with the
        # other pages of this request), so Interaction.credits over that range
        # answers synchronously: a dashboard lists hundreds of them.
        summaries = await info.context.loaders.summary.load_many(
            [((Owner.INTERACTION, window), str(node.id)) for node in nodes]
        )
        for node, summary in zip(nodes, summaries, strict=True):
            node.primed = (window, summary)
    counts = info.context.loaders.interaction_counts
    return InteractionConnection.of(
        result, nodes, lambda: counts.load(((owner, window), key))
    )


@strawberry.type(description="A customer's tenant: the top of the usage hierarchy.")
class Tenant:
    """A tenant."""

    id: strawberry.ID = strawberry.field(description="The customer's tenant id.")

    @strawberry.field(description="Credits of the tenant's usage.")
    async def credits(self, info: Info, range: RangeArg = None) -> CreditSummary:
        return await _credits(info, Owner.TENANT, str(self.id), range)

    @strawberry.field(description="Credits per time bucket, empty buckets included.")
    async def usage(
        self,
        info: Info,
        range: BucketRangeArg,
        granularity: GranularityArg,
        time_zone: ZoneArg = "UTC",
    ) -> list[UsageBucket]:
        return await _usage(
            info, Owner.TENANT, str(self.id), range, granularity, time_zone
        )

    @strawberry.field(
        description=(
            "Users with usage in the range (all users when it is left out), "
            "totalled and ordered by the credits inside the range."
        )
    )
    async def users(
        self,
        info: Info,
        range: RangeArg = None,
        first: FirstArg = 50,
        after: AfterArg = None,
        order_by: Annotated[
            UserOrder, strawberry.argument(description="Sort order.")
        ] = UserOrder.CREDITS_DESC,
    ) -> UserConnection:
        _ = info.context.usage  # the read service, so FORBIDDEN before bad arguments
        limit, offset = args.page(first, after)
        params = (window_of(range), UserOrder(order_by), limit, offset)
        result = await info.context.loaders.users.load((params, str(self.id)))
        nodes = [User(id=strawberry.ID(u), tenant_id=t) for t, u in result.items]
        return UserConnection.of(result, nodes)

    @strawberry.field(description="One user of this tenant, or null.")
    async def user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="User id.")],
    ) -> User | None:
        user_id = args.lookup_id(id)
        if user_id is None:
            return None
        if not await info.context.loaders.user_exists.load((str(self.id), user_id)):
            return None
        return User(id=id, tenant_id=str(self.id))

    @strawberry.field(
        description=(
            "Interactions with usage in the range (all when it is left out), newest "
            "first by their latest usage record (without usage: by createdAt)."
        )
    )
    async def interactions(
        self,
        info: Info,
        range: RangeArg = None,
        first: FirstArg = 50,
        after: AfterArg = None,
    ) -> InteractionConnection:
        return await _interactions(
            info, Owner.TENANT, str(self.id), range, first, after
        )

    @strawberry.field(description="The tenant's own and its users' budgets.")
    async def budgets(self, info: Info) -> list[BudgetRef]:
        from service.graphql.budget_types import budgets_of

        return await budgets_of(info, str(self.id))


@strawberry.type(description="A user of a tenant (the customer's own user id).")
class User:
    """A user."""

    id: strawberry.ID = strawberry.field(description="The customer's user id.")
    tenant_id: strawberry.Private[str]

    @strawberry.field(description="The user's tenant.")
    def tenant(self) -> Tenant:
        return Tenant(id=strawberry.ID(self.tenant_id))

    @strawberry.field(description="Credits of the user's usage.")
    async def credits(self, info: Info, range: RangeArg = None) -> CreditSummary:
        return await _credits(info, Owner.USER, (self.tenant_id, str(self.id)), range)

    @strawberry.field(description="Credits per time bucket, empty buckets included.")
    async def usage(
        self,
        info: Info,
        range: BucketRangeArg,
        granularity: GranularityArg,
        time_zone: ZoneArg = "UTC",
    ) -> list[UsageBucket]:
        key = (self.tenant_id, str(self.id))
        return await _usage(info, Owner.USER, key, range, granularity, time_zone)

    @strawberry.field(
        description="The user's interactions, ordered like Tenant.interactions."
    )
    async def interactions(
        self,
        info: Info,
        range: RangeArg = None,
        first: FirstArg = 50,
        after: AfterArg = None,
    ) -> InteractionConnection:
        key = (self.tenant_id, str(self.id))
        return await _interactions(info, Owner.USER, key, range, first, after)

    @strawberry.field(description="The user's own budgets.")
    async def budgets(self, info: Info) -> list[BudgetRef]:
        from service.graphql.budget_types import budgets_of

        return await budgets_of(info, self.tenant_id, str(self.id))


@strawberry.type(description="A Corti interaction mapped to a tenant and user.")
class Interaction:
    """A registered interaction."""

    id: strawberry.ID = strawberry.field(description="The Corti interactionId.")
    created_at: datetime = strawberry.field(
        description="When the interaction was created."
    )
    tenant_id: strawberry.Private[str]
    user_id: strawberry.Private[str]
    # Credits over a range, fetched with the page that listed it.
    primed: strawberry.Private[tuple[TimeWindow, Summary] | None] = None

    @classmethod
    def from_model(cls, row: models.Interaction | InteractionRow) -> Interaction:
        """Map a database row."""
        return cls(
            id=strawberry.ID(row.id),
            created_at=row.created_at,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
        )

    @strawberry.field(description="The tenant the interaction belongs to.")
    def tenant(self) -> Tenant:
        return Tenant(id=strawberry.ID(self.tenant_id))

    @strawberry.field(description="The user the interaction belongs to.")
    def user(self) -> User:
        return User(id=strawberry.ID(self.user_id), tenant_id=self.tenant_id)

    @strawberry.field(description="Credits of the interaction's usage.")
    def credits(self, info: Info, range: RangeArg = None) -> CreditSummary:
        # Synchronous when its page fetched them (see _interactions); else the
        # batched loader's awaitable, which graphql-core awaits. The schema
        # answers primed nodes before this is reached (primed_credits).
        if self.primed is not None and self.primed[0] == window_of(range):
            return CreditSummary.from_summary(self.primed[1])
        pending = _credits(info, Owner.INTERACTION, str(self.id), range)
        return cast(CreditSummary, pending)

    @strawberry.field(
        description=(
            "The interaction's usage records, oldest first: `first` of them "
            f"(default {args.RECORDS_PAGE}, at most {args.MAX_RECORDS_PAGE}) after "
            "the record whose `cursor` is `after`; credits.records counts them all."
        )
    )
    async def records(
        self,
        info: Info,
        source: Annotated[
            Source | None,
            strawberry.argument(description="Only records of this source."),
        ] = None,
        first: Annotated[
            int,
            strawberry.argument(
                description=f"How many records, 0 to {args.MAX_RECORDS_PAGE}."
            ),
        ] = args.RECORDS_PAGE,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="The `cursor` of the last record of the previous page."
            ),
        ] = None,
    ) -> list[UsageRecord]:
        _ = info.context.usage  # the read service, so FORBIDDEN before bad arguments
        limit, offset = args.page(first, after, args.MAX_RECORDS_PAGE)
        params = (source.value if source is not None else None, limit, offset)
        rows = await info.context.loaders.records.load((params, str(self.id)))
        return [UsageRecord.from_model(row, position) for row, position in rows]


def primed_credits(resolve: GraphQLFieldResolver) -> GraphQLFieldResolver:
    """graphql-core's resolver of Interaction.credits: the credits its page
    fetched, straight from graphql-core's arguments, else `resolve`
    (strawberry's, which converts the arguments and builds an Info first).

    A dashboard lists hundreds of interactions, each asking for its credits
    over its page's range: strawberry's argument conversion and Info for each
    were about a sixth of the dashboard's CPU (README, "Issue 12: this round
    (2026-12-06)"). The answer is the same either way
    (tests/graphql/test_primed_credits.py).
    """

    def resolver(source: Any, info: Any, **kwargs: Any) -> Any:
        primed = source.primed if isinstance(source, Interaction) else None
        if primed is not None:
            value = kwargs.get("range")
            window = (
                TimeWindow()
                if value is None
                else args.window("range", value.get("from"), value.get("to"))
            )
            if primed[0] == window:
                return CreditSummary.from_summary(primed[1])
        return resolve(source, info, **kwargs)

    return resolver


def _id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)


@strawberry.type(description="One credit figure reported by Corti.")
class UsageRecord:
    """A usage record."""

    id: strawberry.ID = strawberry.field(description="Our id of the record.")
    source: Source = strawberry.field(description="Which Corti operation reported it.")
    external_id: strawberry.ID = strawberry.field(
        description="Corti transcript id, document id, or the stream's id."
    )
    credits: Decimal = strawberry.field(description="Credits consumed.")
    created_at: datetime = strawberry.field(description="When the usage happened.")
    received_at: datetime = strawberry.field(
        description="When this service first stored it."
    )
    interaction_id: strawberry.ID | None = strawberry.field(
        description=(
            "The Corti interactionId; null for usage attributed to a tenant and "
            "user directly."
        )
    )
    tenant_id: strawberry.ID | None = strawberry.field(
        description=(
            "The owner's tenant, whichever way the record was attributed; null "
            "while its interaction is not registered."
        )
    )
    user_id: strawberry.ID | None = strawberry.field(
        description=(
            "The owner's user, whichever way the record was attributed; null "
            "while its interaction is not registered."
        )
    )

    # Position in the Interaction.records list that returned it, if any.
    position: strawberry.Private[int | None] = None

    @classmethod
    def from_model(cls, row: RecordRow, position: int | None = None) -> UsageRecord:
        """Map a database row (at `position` of Interaction.records)."""
        return cls(
            position=position,
            id=strawberry.ID(str(row.id)),
            source=Source(row.source),
            external_id=strawberry.ID(row.external_id),
            credits=row.credits,
            created_at=row.created_at,
            received_at=row.received_at,
            interaction_id=_id(row.interaction_id),
            tenant_id=_id(row.tenant_id),
            user_id=_id(row.user_id),
        )

    @strawberry.field(
        description=(
            "Opaque cursor of this record in Interaction.records, for its "
            "`after`; null where the record was not listed by Interaction.records."
        )
    )
    def cursor(self) -> str | None:
        return None if self.position is None else args.encode_cursor(self.position)

    @strawberry.field(
        description=(
            "The interaction; null until it is registered, and for usage "
            "attributed to a user directly."
        )
    )
    async def interaction(self, info: Info) -> Interaction | None:
        if self.interaction_id is None:
            return None
        row = await info.context.loaders.interaction.load(str(self.interaction_id))
        if row is None:
            return None
        return Interaction.from_model(row)


@strawberry.type(description="A page of tenants.")
class TenantConnection(Connection[Tenant]):
    """Tenants page."""


@strawberry.type(description="A page of users.")
class UserConnection(Connection[User]):
    """Users page."""


@strawberry.type(description="A page of interactions.")
class InteractionConnection(Connection[Interaction]):
    """Interactions page; `totalCount` of a range is read only when asked for."""
