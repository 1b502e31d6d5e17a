"""Webhook-style mutations for usage of Corti's stateless calls (facts,
coding, dictation): attributed to an interaction, or to a tenant and user
directly (exactly one of the two)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from service.graphql.context import Info
from service.graphql.mutations import CREATED_AT, _record, _str
from service.graphql.types import InputArg, UsageRecord
from service.usage.records import Source, UsageIn

_INTERACTION = (
    "The Corti interactionId, if the call belongs to one (or tenantId with userId)."
)
_TENANT = "The owner's tenant, for usage without an interaction (with userId)."
_USER = "The owner's user, for usage without an interaction (with tenantId)."


@strawberry.input(
    description=(
        "Credits of a stateless fact extraction (`POST /tools/extract-facts`). "
        "Names exactly one owner: interactionId, or tenantId with userId."
    )
)
class FactsUsageInput:
    """recordFactsUsage input."""

    request_id: strawberry.ID = strawberry.field(
        description="The caller's own id of the request (the idempotency key)."
    )
    credits_consumed: Decimal = strawberry.field(
        description="usageInfo.creditsConsumed from Corti's response."
    )
    interaction_id: strawberry.ID | None = strawberry.field(
        default=None, description=_INTERACTION
    )
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None, description=_TENANT
    )
    user_id: strawberry.ID | None = strawberry.field(default=None, description=_USER)
    created_at: datetime | None = strawberry.field(default=None, description=CREATED_AT)


@strawberry.input(
    description=(
        "Credits of a stateless coding call (`POST /tools/coding/`). "
        "Names exactly one owner: interactionId, or tenantId with userId."
    )
)
class CodingUsageInput:
    """recordCodingUsage input."""

    request_id: strawberry.ID = strawberry.field(
        description="The caller's own id of the request (the idempotency key)."
    )
    credits_consumed: Decimal = strawberry.field(
        description="usageInfo.creditsConsumed from Corti's response."
    )
    interaction_id: strawberry.ID | None = strawberry.field(
        default=None, description=_INTERACTION
    )
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None, description=_TENANT
    )
    user_id: strawberry.ID | None = strawberry.field(default=None, description=_USER)
    created_at: datetime | None = strawberry.field(default=None, description=CREATED_AT)


@strawberry.input(
    description=(
        "Credits from the final `usage` message of a /transcribe (dictation) "
        "session. Names exactly one owner: interactionId, or tenantId with userId."
    )
)
class DictationUsageInput:
    """recordDictationUsage input."""

    session_id: strawberry.ID = strawberry.field(
        description="The socket's sessionId (the idempotency key)."
    )
    credits: Decimal = strawberry.field(
        description="`credits` of the final usage message (not a delta_usage)."
    )
    interaction_id: strawberry.ID | None = strawberry.field(
        default=None, description=_INTERACTION
    )
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None, description=_TENANT
    )
    user_id: strawberry.ID | None = strawberry.field(default=None, description=_USER)
    created_at: datetime | None = strawberry.field(default=None, description=CREATED_AT)


def _usage(
    source: Source,
    external_id: strawberry.ID,
    credits: Decimal,
    input: FactsUsageInput | CodingUsageInput | DictationUsageInput,
) -> UsageIn:
    return UsageIn(
        source=source,
        interaction_id=_str(input.interaction_id),
        external_id=str(external_id),
        credits=credits,
        created_at=input.created_at,
        tenant_id=_str(input.tenant_id),
        user_id=_str(input.user_id),
    )


@strawberry.type(description="Recording usage of Corti's stateless calls.")
class StatelessUsageMutation:
    """Facts, coding and dictation usage."""

    @strawberry.mutation(
        description="Record a fact extraction's credits (idempotent on requestId)."
    )
    async def record_facts_usage(
        self, info: Info, input: InputArg[FactsUsageInput]
    ) -> UsageRecord:
        usage = _usage(Source.FACTS, input.request_id, input.credits_consumed, input)
        return await _record(
            info, usage, credits="creditsConsumed", externalId="requestId"
        )

    @strawberry.mutation(
        description="Record a coding call's credits (idempotent on requestId)."
    )
    async def record_coding_usage(
        self, info: Info, input: InputArg[CodingUsageInput]
    ) -> UsageRecord:
        usage = _usage(Source.CODING, input.request_id, input.credits_consumed, input)
        return await _record(
            info, usage, credits="creditsConsumed", externalId="requestId"
        )

    @strawberry.mutation(
        description="Record a dictation session's final credits (idempotent on sessionId)."
    )
    async def record_dictation_usage(
        self, info: Info, input: InputArg[DictationUsageInput]
    ) -> UsageRecord:
        usage = _usage(Source.DICTATION, input.session_id, input.credits, input)
        return await _record(info, usage, externalId="sessionId")
