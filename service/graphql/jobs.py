"""The Job type (the job mutations live with the worker's domain)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation

import strawberry

from service.db import models
from service.graphql.context import Info
from service.graphql.enums import JobStatus
from service.graphql.types import Interaction, UsageRecord


@strawberry.type(description="A Corti call run by the background worker.")
class Job:
    """A background job."""

    id: strawberry.ID = strawberry.field(description="Job id.")
    kind: str = strawberry.field(
        description=(
            "What the job does: createInteraction, requestTranscript, "
            "requestDocument, requestStream, requestFacts, requestCoding or "
            "requestDictation (other kinds are internal)."
        )
    )
    status: JobStatus = strawberry.field(description="Current state.")
    attempts: int = strawberry.field(
        description="How many times the worker started it."
    )
    error: str | None = strawberry.field(description="Why the last attempt failed.")
    created_at: datetime = strawberry.field(description="When it was queued.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    provisional_credits: Decimal | None = strawberry.field(
        description=(
            "While a requestStream or requestDictation job is RUNNING: the latest "
            "delta_usage figure Corti sent, its running total since the session "
            "started (never a sum of messages). Provisional only: it is not in any "
            "total, and the final usage message replaces it as the job's usage "
            "record. Null before the first delta_usage, between attempts, and once "
            "the job has ended."
        )
    )
    interaction_id: strawberry.Private[str | None]
    usage_record_id: strawberry.Private[str | None]

    @classmethod
    def from_model(cls, row: models.Job) -> Job:
        """Map a database row."""
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            status=JobStatus(row.status),
            attempts=row.attempts,
            error=row.error,
            created_at=row.created_at,
            updated_at=row.updated_at,
            provisional_credits=_provisional(row),
            interaction_id=row.interaction_id,
            usage_record_id=str(row.usage_record_id) if row.usage_record_id else None,
        )

    @strawberry.field(description="The interaction the job works on, once registered.")
    async def interaction(self, info: Info) -> Interaction | None:
        if self.interaction_id is None:
            return None
        row = await info.context.loaders.interaction.load(self.interaction_id)
        return Interaction.from_model(row) if row is not None else None

    @strawberry.field(
        description="The usage record the job produced, once it succeeded."
    )
    async def usage(self, info: Info) -> UsageRecord | None:
        if self.usage_record_id is None:
            return None
        row = await info.context.loaders.job_usage.load(uuid.UUID(self.usage_record_id))
        return UsageRecord.from_model(row) if row is not None else None


def _provisional(row: models.Job) -> Decimal | None:
    """The saved delta_usage figure of a running job (see the field)."""
    raw = (row.state or {}).get("provisional_credits")
    if row.status != "RUNNING" or raw is None:
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None
