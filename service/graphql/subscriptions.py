"""Live updates over WebSocket (graphql-transport-ws).

The key travels in the `connection_init` payload,
`{"Authorization": "Bearer <key>"}` (browsers cannot set WebSocket headers);
a missing or bad key closes the socket with 4403 before any operation runs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry.exceptions import ConnectionRejectionError

from service.auth.http import authenticate_connection_params
from service.errors import Unauthenticated
from service.graphql.context import Context, Info
from service.graphql.types import UsageRecord
from service.live.events import UsageEvent
from service.live.feed import UsageFeed
from service.state import AppState
from service.usage.records import Source
from service.validation import check_id


async def authenticate_connection(context: Context) -> None:
    """Check the key of `connection_init`; raise ConnectionRejectionError if bad."""
    try:
        context.principal = await authenticate_connection_params(
            context.db, context.connection_params or {}, context.principal
        )
    except Unauthenticated as error:
        raise ConnectionRejectionError({"message": error.message}) from None
    context.auth_error = None


def _record(event: UsageEvent) -> UsageRecord:
    return UsageRecord(
        id=strawberry.ID(event.id),
        source=Source(event.source),
        external_id=strawberry.ID(event.external_id),
        credits=event.credits,
        created_at=event.created_at,
        received_at=event.received_at,
        interaction_id=(
            None
            if event.interaction_id is None
            else strawberry.ID(event.interaction_id)
        ),
        tenant_id=strawberry.ID(event.tenant_id),
        user_id=None if event.user_id is None else strawberry.ID(event.user_id),
    )


@strawberry.type(
    description=(
        "Live updates over WebSocket (graphql-transport-ws). Send the key in the "
        'connection_init payload: {"Authorization": "Bearer <key>"}.'
    )
)
class Subscription:
    """The root subscription type."""

    @strawberry.subscription(
        description=(
            "Each new usage record of the tenant, within a second of its commit "
            "(redeliveries are not repeated). Usage of an interaction that is not "
            "registered yet belongs to no tenant and is not announced. A "
            "subscriber that falls far behind is ended with an error."
        )
    )
    async def usage_recorded(
        self,
        info: Info,
        tenant_id: Annotated[
            strawberry.ID, strawberry.argument(description="The tenant to watch.")
        ],
    ) -> AsyncGenerator[UsageRecord]:
        usage = info.context.usage
        tenant = usage.watch(check_id("tenantId", tenant_id))
        state: AppState = info.context.extras["state"]
        feed: UsageFeed = state.feed
        async with feed.subscribe(tenant) as events:
            async for event in events:
                # Fresh loaders, so nested fields read the current data.
                info.context.reset_loaders()
                yield _record(event)
