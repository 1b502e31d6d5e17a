"""Webhook-style ingestion mutations; one unit of work per mutation field."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from service.errors import BadUserInput
from service.graphql.context import Info
from service.graphql.types import IngestResult, InputArg, Interaction, UsageRecord
from service.uow import unit_of_work
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service

CREATED_AT = "When it happened; left out: the time this service received it."


@strawberry.input(
    description="Map a Corti interaction to the customer's tenant and user."
)
class RegisterInteractionInput:
    """registerInteraction input."""

    interaction_id: strawberry.ID = strawberry.field(
        description="The Corti interactionId."
    )
    tenant_id: strawberry.ID = strawberry.field(description="The customer's tenant id.")
    user_id: strawberry.ID = strawberry.field(description="The customer's user id.")
    created_at: datetime | None = strawberry.field(
        default=None,
        description="When the interaction was created; left out: now (or unchanged).",
    )


@strawberry.input(description="Credits reported on a created transcript.")
class TranscriptUsageInput:
    """recordTranscriptUsage input."""

    interaction_id: strawberry.ID = strawberry.field(
        description="The Corti interactionId."
    )
    transcript_id: strawberry.ID = strawberry.field(
        description="The Corti transcript id."
    )
    credits_consumed: Decimal = strawberry.field(
        description="usageInfo.creditsConsumed from Corti's response."
    )
    created_at: datetime | None = strawberry.field(default=None, description=CREATED_AT)


@strawberry.input(description="Credits reported on a generated document.")
class DocumentUsageInput:
    """recordDocumentUsage input."""

    interaction_id: strawberry.ID = strawberry.field(
        description="The Corti interactionId."
    )
    document_id: strawberry.ID = strawberry.field(description="The Corti document id.")
    credits_consumed: Decimal = strawberry.field(
        description="usageInfo.creditsConsumed from Corti's response."
    )
    created_at: datetime | None = strawberry.field(default=None, description=CREATED_AT)


@strawberry.input(
    description="Credits from the final `usage` message of a /streams session."
)
class StreamUsageInput:
    """recordStreamUsage input."""

    interaction_id: strawberry.ID = strawberry.field(
        description="The Corti interactionId."
    )
    stream_id: strawberry.ID = strawberry.field(
        description="The sender's own id for the websocket session (e.g. a UUID)."
    )
    credits: Decimal = strawberry.field(
        description="`credits` of the final usage message."
    )
    created_at: datetime | None = strawberry.field(default=None, description=CREATED_AT)


@strawberry.input(
    description=(
        "One usage record of a batch. It names exactly one owner: "
        "`interactionId`, or `tenantId` with `userId` (attributed directly)."
    )
)
class UsageRecordInput:
    """ingestUsage item."""

    source: Source = strawberry.field(description="Which Corti operation reported it.")
    external_id: strawberry.ID = strawberry.field(
        description=(
            "Corti transcript id, document id, the stream's id, or the caller's "
            "request or session id of a stateless call."
        )
    )
    credits: Decimal = strawberry.field(description="Credits consumed.")
    created_at: datetime | None = strawberry.field(default=None, description=CREATED_AT)
    interaction_id: strawberry.ID | None = strawberry.field(
        default=None, description="The Corti interactionId (or tenantId with userId)."
    )
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The owner's tenant, for usage without an interaction.",
    )
    user_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The owner's user (with tenantId), for usage without an interaction.",
    )


def _usage_record_from_input(
    cls: type[UsageRecordInput], value: Mapping[str, Any], _context: object
) -> UsageRecordInput:
    """Build one ingestUsage item from its (already validated) input value.

    graphql-core has parsed every field (enum, ID, Decimal, DateTime scalars)
    before strawberry sees the value; strawberry's generic conversion would
    then resolve each field's annotation again for every item, which was the
    largest single cost of a 1,000-record batch (bench/). This hook, which
    strawberry offers input types for exactly this, copies the fields.
    """
    return cls(
        source=Source(value["source"]),
        interaction_id=value.get("interactionId"),
        external_id=value["externalId"],
        credits=value["credits"],
        created_at=value.get("createdAt"),
        tenant_id=value.get("tenantId"),
        user_id=value.get("userId"),
    )


UsageRecordInput.__strawberry_definition__.from_input = _usage_record_from_input  # type: ignore[attr-defined]


@contextmanager
def _input_fields(**renames: str) -> Iterator[None]:
    """Name fields as the client wrote them: `input.creditsConsumed`."""
    try:
        yield
    except BadUserInput as error:
        name = renames.get(error.field, error.field)
        raise BadUserInput(f"input.{name}", error.message.split(": ", 1)[1]) from None


def _str(value: object | None) -> str | None:
    return None if value is None else str(value)


async def _record(info: Info, usage: UsageIn, **renames: str) -> UsageRecord:
    caller = info.context.caller
    with _input_fields(**renames):
        async with unit_of_work(info.context.db, caller) as uow:
            outcome = await usage_service.record(uow, caller, usage)
    return UsageRecord.from_model(outcome.record)


@strawberry.type(description="Recording usage and registering interactions.")
class IngestionMutation:
    """Ingestion mutations."""

    @strawberry.mutation(
        description=(
            "Map an interaction to a tenant and user. Registering it again with "
            "another user or tenant moves its usage with it."
        )
    )
    async def register_interaction(
        self, info: Info, input: InputArg[RegisterInteractionInput]
    ) -> Interaction:
        caller = info.context.caller
        with _input_fields():
            async with unit_of_work(info.context.db, caller) as uow:
                row = await usage_service.register_interaction(
                    uow,
                    caller,
                    interaction_id=str(input.interaction_id),
                    tenant_id=str(input.tenant_id),
                    user_id=str(input.user_id),
                    created_at=input.created_at,
                )
        return Interaction.from_model(row)

    @strawberry.mutation(description="Record a transcript's credits (idempotent).")
    async def record_transcript_usage(
        self, info: Info, input: InputArg[TranscriptUsageInput]
    ) -> UsageRecord:
        return await _record(
            info,
            UsageIn(
                source=Source.TRANSCRIPT,
                interaction_id=str(input.interaction_id),
                external_id=str(input.transcript_id),
                credits=input.credits_consumed,
                created_at=input.created_at,
            ),
            credits="creditsConsumed",
            externalId="transcriptId",
        )

    @strawberry.mutation(description="Record a document's credits (idempotent).")
    async def record_document_usage(
        self, info: Info, input: InputArg[DocumentUsageInput]
    ) -> UsageRecord:
        return await _record(
            info,
            UsageIn(
                source=Source.DOCUMENT,
                interaction_id=str(input.interaction_id),
                external_id=str(input.document_id),
                credits=input.credits_consumed,
                created_at=input.created_at,
            ),
            credits="creditsConsumed",
            externalId="documentId",
        )

    @strawberry.mutation(description="Record a stream's final credits (idempotent).")
    async def record_stream_usage(
        self, info: Info, input: InputArg[StreamUsageInput]
    ) -> UsageRecord:
        return await _record(
            info,
            UsageIn(
                source=Source.STREAM,
                interaction_id=str(input.interaction_id),
                external_id=str(input.stream_id),
                credits=input.credits,
                created_at=input.created_at,
            ),
            externalId="streamId",
        )

    @strawberry.mutation(
        description=(
            "Record many usage records at once, all or nothing; an error names the "
            "index of the bad record. Up to 10,000 records per call."
        )
    )
    async def ingest_usage(
        self,
        info: Info,
        records: Annotated[
            list[UsageRecordInput],
            strawberry.argument(description="The batch, up to 10,000 records."),
        ],
    ) -> IngestResult:
        batch = [
            UsageIn(
                source=Source(item.source),
                interaction_id=_str(item.interaction_id),
                external_id=str(item.external_id),
                credits=item.credits,
                created_at=item.created_at,
                tenant_id=_str(item.tenant_id),
                user_id=_str(item.user_id),
            )
            for item in records
        ]
        caller = info.context.caller
        async with unit_of_work(info.context.db, caller) as uow:
            outcome = await usage_service.ingest(uow, caller, batch)
        return IngestResult(
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            stored=outcome.records,
        )
