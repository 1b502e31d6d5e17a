"""GraphQL enums, with a description on every value.

The domain enums (Source, UserOrder) stay free of strawberry; their GraphQL
descriptions are attached here.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

import strawberry

from service.usage.queries import UserOrder
from service.usage.records import Source

E = TypeVar("E", bound=type[Enum])


def described_enum(cls: E, name: str, description: str, values: dict[str, str]) -> E:
    """Register `cls` as a GraphQL enum and describe each of its values."""
    strawberry.enum(cls, name=name, description=description)
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    missing = {value.name for value in definition.values} - values.keys()
    if missing:
        raise ValueError(f"{name}: undocumented values {sorted(missing)}")
    for value in definition.values:
        value.description = values[value.name]
    return cls


described_enum(
    Source,
    "UsageSource",
    "Which Corti operation reported the credits. More sources may be added.",
    {
        "STREAM": "The final `usage` message of a /streams websocket session.",
        "TRANSCRIPT": "`usageInfo.creditsConsumed` of a created transcript.",
        "DOCUMENT": (
            "`usageInfo.creditsConsumed` of a generated document (also guided "
            "documents, `POST /documents/`)."
        ),
        "FACTS": (
            "`usageInfo.creditsConsumed` of a stateless fact extraction "
            "(`POST /tools/extract-facts`)."
        ),
        "CODING": (
            "`usageInfo.creditsConsumed` of a stateless coding call "
            "(`POST /tools/coding/`)."
        ),
        "DICTATION": (
            "The final `usage` message of a /transcribe (dictation) websocket session."
        ),
    },
)

described_enum(
    UserOrder,
    "UserOrder",
    "How a tenant's users are ordered.",
    {
        "CREDITS_DESC": "Most credits (inside the range) first; ties by id.",
        "ID_ASC": "By user id, ascending.",
    },
)


class Granularity(Enum):
    """Bucket width."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


described_enum(
    Granularity,
    "Granularity",
    "Width of a usage bucket, aligned in the requested time zone.",
    {
        "HOUR": "Local clock hours.",
        "DAY": "Local days from midnight; 23 or 25 hours long on DST changes.",
        "WEEK": "Weeks starting Monday at local midnight.",
        "MONTH": "Calendar months from the 1st at local midnight.",
    },
)


class JobStatus(Enum):
    """Job state."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


described_enum(
    JobStatus,
    "JobStatus",
    "Where a job is in its life.",
    {
        "QUEUED": "Stored, waiting for a worker (also between retries).",
        "RUNNING": "A worker holds its lease and is calling Corti.",
        "SUCCEEDED": "Done; any credits Corti reported are in the ledger.",
        "FAILED": "Gave up; `error` says why.",
    },
)
