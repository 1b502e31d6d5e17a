"""Plain values passed between the GraphQL layer, the worker and the service,
and how long lists of keys are cut into IN-lists."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from service.db.models import UsageRecord

# Keys per IN-list when rows are looked up (a key may take several bound
# parameters; SQLite and asyncpg allow about 32,000).
LOOKUP_CHUNK = 500


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Source(StrEnum):
    """Where a credit figure came from (stored as these names)."""

    STREAM = "STREAM"
    TRANSCRIPT = "TRANSCRIPT"
    DOCUMENT = "DOCUMENT"
    FACTS = "FACTS"
    CODING = "CODING"
    DICTATION = "DICTATION"


@dataclass(frozen=True)
class UsageIn:
    """One usage record as delivered, not yet validated.

    It names exactly one owner: `interaction_id`, or `tenant_id` with
    `user_id` (usage attributed to a user directly, e.g. stateless Corti calls).
    """

    source: Source
    interaction_id: str | None
    external_id: str
    credits: Decimal
    created_at: datetime | None = None
    tenant_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A usage record as written by this call (no ORM instance needed)."""

    id: uuid.UUID
    source: str
    external_id: str
    interaction_id: str | None
    credits: Decimal
    created_at: datetime
    received_at: datetime
    tenant_id: str | None
    user_id: str | None
    writer_tenant_id: str | None


RecordRow = UsageRecord | StoredRecord


@dataclass(frozen=True)
class RecordOutcome:
    """A stored usage record and whether this delivery was a redelivery."""

    record: RecordRow
    duplicate: bool


@dataclass(frozen=True)
class IngestOutcome:
    """The result of a batch: records in input order, with counts."""

    accepted: int
    duplicates: int
    records: list[RecordRow]
