"""Root query fields. The read services apply role and tenant scope."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from service.errors import BadUserInput
from service.graphql import args
from service.graphql.context import Info
from service.graphql.jobs import Job
from service.graphql.types import (
    AfterArg,
    FirstArg,
    Interaction,
    Tenant,
    TenantConnection,
)


def parse_uuid(field: str, value: str) -> uuid.UUID:
    """A UUID argument, or BAD_USER_INPUT naming the field."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadUserInput(field, "is not a valid id") from None


@strawberry.type(description="Reading usage: tenants, users, interactions and jobs.")
class Query:
    """The root query type."""

    @strawberry.field(description="Tenants visible to the caller, by id.")
    async def tenants(
        self, info: Info, first: FirstArg = 50, after: AfterArg = None
    ) -> TenantConnection:
        usage = info.context.usage
        limit, offset = args.page(first, after)
        async with info.context.db.read() as session:
            result = await usage.tenants(session, limit, offset)
        nodes = [Tenant(id=strawberry.ID(t)) for t in result.items]
        return TenantConnection.of(result, nodes)

    @strawberry.field(description="One tenant, or null if unknown or not visible.")
    async def tenant(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Tenant id.")],
    ) -> Tenant | None:
        _ = info.context.usage  # its read service: FORBIDDEN first for other roles
        tenant_id = args.lookup_id(id)
        if tenant_id is None:
            return None
        if not await info.context.loaders.tenant_exists.load(tenant_id):
            return None
        return Tenant(id=id)

    @strawberry.field(description="One registered interaction by Corti interactionId.")
    async def interaction(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="Corti interactionId.")
        ],
    ) -> Interaction | None:
        _ = info.context.usage  # its read service: FORBIDDEN first for other roles
        interaction_id = args.lookup_id(id)
        if interaction_id is None:
            return None
        row = await info.context.loaders.interaction.load(interaction_id)
        if row is None:
            return None
        return Interaction.from_model(row)

    @strawberry.field(
        description="A background job; ingest keys see only the jobs they created."
    )
    async def job(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Job id.")],
    ) -> Job | None:
        _ = info.context.caller  # UNAUTHENTICATED before the id is parsed
        row = await info.context.loaders.job.load(parse_uuid("id", str(id)))
        if row is None:
            return None
        return Job.from_model(row)
