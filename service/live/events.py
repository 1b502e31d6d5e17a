"""What a live subscriber learns about a committed usage record."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from service.db.types import credits_text

# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD_BYTES = 7500
# One encoder for every event (`json.dumps` with separators builds a new one
# per call, a third of the cost of encoding a batch's events).
_encode = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class UsageEvent:
    """A usage record, committed, with the tenant it was attributed to then."""

    id: str
    tenant_id: str
    interaction_id: str | None
    source: str
    external_id: str
    credits: Decimal
    created_at: datetime
    received_at: datetime
    user_id: str | None = None

    def to_json(self) -> dict[str, str | None]:
        """A JSON object (exact credits as text, ISO times)."""
        return {
            "id": self.id,
            "tenantId": self.tenant_id,
            "interactionId": self.interaction_id,
            "source": self.source,
            "externalId": self.external_id,
            "credits": credits_text(self.credits),
            "createdAt": self.created_at.isoformat(),
            "receivedAt": self.received_at.isoformat(),
            "userId": self.user_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageEvent:
        """The inverse of `to_json`."""
        return cls(
            id=str(data["id"]),
            tenant_id=str(data["tenantId"]),
            interaction_id=(
                None if data["interactionId"] is None else str(data["interactionId"])
            ),
            source=str(data["source"]),
            external_id=str(data["externalId"]),
            credits=Decimal(str(data["credits"])),
            created_at=datetime.fromisoformat(str(data["createdAt"])),
            received_at=datetime.fromisoformat(str(data["receivedAt"])),
            user_id=None if data.get("userId") is None else str(data["userId"]),
        )


def payloads(events: Iterable[UsageEvent]) -> Iterator[str]:
    """JSON arrays of events, each small enough for one NOTIFY."""
    batch: list[str] = []
    size = 2
    for event in events:
        item = _encode(event.to_json())
        length = len(item)  # bytes too: the encoder escapes non-ASCII
        if batch and size + length + 1 > MAX_PAYLOAD_BYTES:
            yield "[" + ",".join(batch) + "]"
            batch, size = [], 2
        batch.append(item)
        size += length + 1
    if batch:
        yield "[" + ",".join(batch) + "]"


def parse_payload(payload: str) -> Sequence[UsageEvent]:
    """Events from one NOTIFY payload."""
    return [UsageEvent.from_json(item) for item in json.loads(payload)]
