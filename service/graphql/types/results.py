"""Mutation results."""

from __future__ import annotations

import strawberry

from service.graphql.types.nodes import UsageRecord
from service.usage.records import RecordRow


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
