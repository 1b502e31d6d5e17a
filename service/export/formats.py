"""Row encodings: CSV (RFC 4180) and NDJSON, a batch of rows at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from service.db.timebuckets import zone
from service.db.types import credits_text
from service.graphql.scalars import serialize_datetime

USAGE_COLUMNS = (
    "interactionId",
    "userId",
    "tenantId",
    "source",
    "externalId",
    "credits",
    "createdAt",
)
DAILY_COLUMNS = ("date", "tenantId", "userId", "source", "credits", "records")

Encoder = Callable[[Sequence[Any]], bytes]


def usage_values(row: Any) -> tuple[Any, ...]:
    """A usage row as JSON-ready values (credits exact, times UTC with Z)."""
    return (
        row.interaction_id,
        row.user_id,
        row.tenant_id,
        row.source,
        row.external_id,
        credits_text(row.credits),
        serialize_datetime(row.created_at),
    )


def daily_values(zone_name: str) -> Callable[[Any], tuple[Any, ...]]:
    """A daily row as values; the day is the local date in `zone_name`."""
    tz = zone(zone_name)

    def values(row: Any) -> tuple[Any, ...]:
        day: datetime = row.day
        return (
            day.astimezone(tz).date().isoformat(),
            row.tenant_id,
            row.user_id,
            row.source,
            credits_text(row.credits),
            row.records,
        )

    return values


def csv_header(columns: Sequence[str]) -> bytes:
    """The header line."""
    return _csv_lines([columns])


def csv_encoder(values: Callable[[Any], tuple[Any, ...]]) -> Encoder:
    """Rows to CSV lines; NULL becomes an empty field."""
    return lambda rows: _csv_lines(
        [["" if v is None else v for v in values(row)] for row in rows]
    )


def ndjson_encoder(
    columns: Sequence[str], values: Callable[[Any], tuple[Any, ...]]
) -> Encoder:
    """Rows to one JSON object per line; NULL stays null, credits are strings."""

    def encode(rows: Sequence[Any]) -> bytes:
        return "".join(
            json.dumps(
                dict(zip(columns, values(row), strict=True)), separators=(",", ":")
            )
            + "\n"
            for row in rows
        ).encode()

    return encode


def _csv_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()
