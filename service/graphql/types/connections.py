"""One generic Relay connection: `Connection[T]` with `Edge[T]` and `PageInfo`.

It follows the Relay cursor connections spec as GitHub and Shopify serve it:
`edges { cursor node }` beside `nodes`, `pageInfo { hasNextPage
hasPreviousPage startCursor endCursor }` and `totalCount`. A node type gets
its connection as a subclass, `class TenantConnection(Connection[Tenant])`,
whose edge type strawberry names `TenantEdge`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar

import strawberry

from service.graphql import args
from service.usage.queries.models import Page

T = TypeVar("T")


@strawberry.type(
    description="Where a page starts and ends, and whether nodes come before or after it."
)
class PageInfo:
    """Relay page information."""

    has_next_page: bool = strawberry.field(description="Whether more nodes follow.")
    has_previous_page: bool = strawberry.field(
        description="Whether nodes come before this page (it was read with `after`)."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first node; null for an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null for an empty page."
    )

    @classmethod
    def of(cls, result: Page[Any]) -> PageInfo:
        """Page info for a page of results."""
        start: str | None = None
        end: str | None = None
        if result.items:
            start = args.encode_cursor(result.offset)
            end = args.encode_cursor(result.offset + len(result.items) - 1)
        return cls(
            has_next_page=result.has_next,
            has_previous_page=result.offset > 0,
            start_cursor=start,
            end_cursor=end,
        )


@strawberry.type(description="One node of a page and the cursor that points at it.")
class Edge(Generic[T]):
    """A Relay edge."""

    cursor: str = strawberry.field(
        description="Pass as `after` to get the nodes that follow this one."
    )
    node: T = strawberry.field(description="The node.")


Count = Callable[[], Awaitable[int]]


@strawberry.type(description="A page of a list, as a Relay connection.")
class Connection(Generic[T]):
    """A page of nodes; build it with `Connection.of`."""

    nodes: list[T] = strawberry.field(description="The nodes of this page.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    offset: strawberry.Private[int]
    counted: strawberry.Private[int | None]
    # Reads the size of the list when a client asks and the page did not count.
    count: strawberry.Private[Count | None] = None

    @classmethod
    def of(cls, result: Page[Any], nodes: list[T], count: Count | None = None) -> Self:
        """The connection of one page, its nodes already mapped."""
        return cls(
            nodes=nodes,
            page_info=PageInfo.of(result),
            offset=result.offset,
            counted=result.total,
            count=count,
        )

    @strawberry.field(description="The nodes of this page with their cursors.")
    def edges(self) -> list[Edge[T]]:
        return [
            Edge(cursor=args.encode_cursor(self.offset + i), node=node)
            for i, node in enumerate(self.nodes)
        ]

    @strawberry.field(description="How many nodes the list has in all.")
    def total_count(self) -> int:
        # Synchronous when the page was counted; otherwise the awaitable of
        # one more (batched) statement, sent only when a client asks for it.
        if self.counted is not None:
            return self.counted
        if self.count is None:
            raise ValueError("this page was read without counting its list")
        return self.count()  # type: ignore[return-value]
