"""GraphQL object types. Resolvers parse arguments and call loaders only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, cast

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, Selection

from service.db import models
from service.graphql import args
from service.graphql.context import Info
from service.graphql.enums import Granularity
from service.usage.queries import (
    Bucket,
    InteractionRow,
    Owner,
    Page,
    Summary,
    TimeWindow,
    UserOrder,
)
from service.usage.records import RecordRow, Source


@strawberry.input(description="Half-open [from, to). Either end may be left out.")
class TimeRange:
    """A half-open time range."""

    from_: datetime | None = strawberry.field(
        name="from", default=None, description="Inclusive start."
    )
    to: datetime | None = strawberry.field(default=None, description="Exclusive end.")

    def window(self) -> TimeWindow:
        """The validated range."""
        return args.window("range", self.from_, self.to)


def _time_range_from_input(
    cls: type[TimeRange], value: Mapping[str, Any], _context: object
) -> TimeRange:
    # A dashboard converts the same range for every row it lists; strawberry's
    # generic conversion re-resolves the fields' annotations each time
    # (graphql-core has already parsed both DateTime values).
    return cls(from_=value.get("from"), to=value.get("to"))


TimeRange.__strawberry_definition__.from_input = _time_range_from_input  # type: ignore[attr-defined]


def _window(value: TimeRange | None) -> TimeWindow:
    return value.window() if value is not None else TimeWindow()


@strawberry.type(
    description="Credits summed over usage records, in total and by source."
)
class CreditSummary:
    """Exact credit totals."""

    total: Decimal = strawberry.field(description="Credits from every source.")
    stream: Decimal = strawberry.field(
        description="Credits reported by /streams sessions."
    )
    transcript: Decimal = strawberry.field(
        description="Credits reported on transcripts."
    )
    document: Decimal = strawberry.field(description="Credits reported on documents.")
    records: int = strawberry.field(description="How many usage records were summed.")

    @classmethod
    def from_summary(cls, summary: Summary) -> CreditSummary:
        """Map a query summary."""
        return cls(
            total=summary.total,
            stream=summary.of(Source.STREAM),
            transcript=summary.of(Source.TRANSCRIPT),
            document=summary.of(Source.DOCUMENT),
            records=summary.records,
        )


@strawberry.type(description="Credits of one time bucket [start, end).")
class UsageBucket:
    """A time bucket."""

    start: datetime = strawberry.field(description="Bucket start (inclusive).")
    end: datetime = strawberry.field(description="Bucket end (exclusive).")
    credits: CreditSummary = strawberry.field(
        description="Credits of usage inside both the bucket and the requested range."
    )

    @classmethod
    def from_bucket(cls, bucket: Bucket) -> UsageBucket:
        """Map a query bucket."""
        return cls(
            start=bucket.start,
            end=bucket.end,
            credits=CreditSummary.from_summary(bucket.credits),
        )


@strawberry.type(description="Where a page ends and whether more follow.")
class PageInfo:
    """Relay-style page information."""

    has_next_page: bool = strawberry.field(description="Whether more nodes follow.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null for an empty page."
    )

    @classmethod
    def of(cls, result: Page[object]) -> PageInfo:
        """Page info for a page of results."""
        end = (
            args.encode_cursor(result.offset + len(result.items) - 1)
            if result.items
            else None
        )
        return cls(has_next_page=result.has_next, end_cursor=end)


async def _credits(
    info: Info, owner: Owner, key: object, range: TimeRange | None
) -> CreditSummary:
    info.context.caller.require_read()
    summary = await info.context.loaders.summary.load(((owner, _window(range)), key))
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
    info.context.caller.require_read()
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
    info.context.caller.require_read()
    limit, offset = args.page(first, after)
    window = _window(range)
    params = (owner, window, limit, offset)
    result = await info.context.loaders.interactions.load((params, key))
    nodes = [Interaction.from_model(row) for row in result.items]
    if nodes and _asks_for(info.selected_fields[0].selections, ("nodes", "credits")):
        # Fetch the nodes' credits over the page's range now (batched with the
        # other pages of this request), so Interaction.credits over that range
        # answers synchronously: a dashboard lists hundreds of them.
        summaries = await info.context.loaders.summary.load_many(
            [((Owner.INTERACTION, window), str(node.id)) for node in nodes]
        )
        for node, summary in zip(nodes, summaries, strict=True):
            node.primed = (window, summary)
    return InteractionConnection(
        nodes=nodes,
        page_info=PageInfo.of(result),  # type: ignore[arg-type]
        owner=owner,
        key=key,
        window=window,
        counted=result.total,
    )


RANGE_DESCRIPTION = "Only usage records created inside this range."
BUCKET_RANGE = "The range to cover; both ends are required."
ZONE_DESCRIPTION = (
    "IANA time zone in which buckets are aligned, e.g. Europe/Copenhagen."
)
FIRST_DESCRIPTION = "Page size, 0 to 100."
AFTER_DESCRIPTION = "A cursor from pageInfo.endCursor."

RangeArg = Annotated[
    TimeRange | None, strawberry.argument(description=RANGE_DESCRIPTION)
]
BucketRangeArg = Annotated[TimeRange, strawberry.argument(description=BUCKET_RANGE)]
GranularityArg = Annotated[
    Granularity, strawberry.argument(description="Bucket width.")
]
ZoneArg = Annotated[str, strawberry.argument(description=ZONE_DESCRIPTION)]
FirstArg = Annotated[int, strawberry.argument(description=FIRST_DESCRIPTION)]
AfterArg = Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)]


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
        info.context.caller.require_read()
        limit, offset = args.page(first, after)
        params = (_window(range), UserOrder(order_by), limit, offset)
        result = await info.context.loaders.users.load((params, str(self.id)))
        return UserConnection(
            nodes=[User(id=strawberry.ID(u), tenant_id=t) for t, u in result.items],
            page_info=PageInfo.of(result),  # type: ignore[arg-type]
            total_count=result.counted,
        )

    @strawberry.field(description="One user of this tenant, or null.")
    async def user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="User id.")],
    ) -> User | None:
        info.context.caller.require_read()
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
        # batched loader's awaitable, which graphql-core awaits.
        if self.primed is not None and self.primed[0] == _window(range):
            info.context.caller.require_read()
            return CreditSummary.from_summary(self.primed[1])
        pending = _credits(info, Owner.INTERACTION, str(self.id), range)
        return cast(CreditSummary, pending)

    @strawberry.field(description="The interaction's usage records, oldest first.")
    async def records(
        self,
        info: Info,
        source: Annotated[
            Source | None,
            strawberry.argument(description="Only records of this source."),
        ] = None,
    ) -> list[UsageRecord]:
        info.context.caller.require_read()
        params = source.value if source is not None else None
        rows = await info.context.loaders.records.load((params, str(self.id)))
        return [UsageRecord.from_model(row) for row in rows]


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
    interaction_id: strawberry.ID = strawberry.field(
        description="The Corti interactionId."
    )

    @classmethod
    def from_model(cls, row: RecordRow) -> UsageRecord:
        """Map a database row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            source=Source(row.source),
            external_id=strawberry.ID(row.external_id),
            credits=row.credits,
            created_at=row.created_at,
            received_at=row.received_at,
            interaction_id=strawberry.ID(row.interaction_id),
        )

    @strawberry.field(description="The interaction; null until it is registered.")
    async def interaction(self, info: Info) -> Interaction | None:
        row = await info.context.loaders.interaction.load(str(self.interaction_id))
        if row is None or not info.context.caller.sees_tenant(row.tenant_id):
            return None
        return Interaction.from_model(row)


@strawberry.type(description="A page of tenants.")
class TenantConnection:
    """Tenants page."""

    nodes: list[Tenant] = strawberry.field(description="The tenants of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(
        description="How many tenants there are in all."
    )


@strawberry.type(description="A page of users.")
class UserConnection:
    """Users page."""

    nodes: list[User] = strawberry.field(description="The users of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(
        description="How many users the list has in all."
    )


@strawberry.type(description="A page of interactions.")
class InteractionConnection:
    """Interactions page."""

    nodes: list[Interaction] = strawberry.field(
        description="The interactions of this page."
    )
    page_info: PageInfo = strawberry.field(description="Paging information.")
    owner: strawberry.Private[Owner]
    key: strawberry.Private[object]
    window: strawberry.Private[TimeWindow]
    counted: strawberry.Private[int | None]

    @strawberry.field(description="How many interactions the list has in all.")
    async def total_count(self, info: Info) -> int:
        # Pages of a range are read without counting on PostgreSQL (see
        # queries.interactions_pages); the count is one more batched
        # statement, sent only when a client asks for it.
        if self.counted is not None:
            return self.counted
        counts = info.context.loaders.interaction_counts
        return await counts.load(((self.owner, self.window), self.key))


@strawberry.type(description="The outcome of a batch ingestion.")
class IngestResult:
    """Batch result."""

    accepted: int = strawberry.field(description="Records stored by this call.")
    duplicates: int = strawberry.field(
        description="Records already stored with the same credits (redeliveries)."
    )
    stored: strawberry.Private[list[RecordRow]]

    @strawberry.field(description="Every record of the batch, in input order.")
    def records(self) -> list[UsageRecord]:
        # Built only when selected: most batch senders ask for the counts.
        return [UsageRecord.from_model(row) for row in self.stored]
