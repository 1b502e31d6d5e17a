"""Row encodings: CSV (RFC 4180) and NDJSON, a batch of rows at a time.

Every CSV the service writes goes through `csv_cell`, which neutralises
spreadsheet formulas the way OWASP recommends for CSV injection.
"""

from __future__ import annotations

import csv
import io
import json
import re
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

# OWASP's formula triggers (=, +, -, @, tab, carriage return), and | (DDE in
# older spreadsheets) and newline for good measure.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


def csv_cell(value: Any) -> Any:
    """A value safe to put in a CSV cell that a spreadsheet will open.

    Text that starts with a formula trigger gets a leading `'` (the spreadsheet
    shows it as text and drops the quote); plain decimal numbers (credits such as
    `-0.5`, record counts) and non-text values are left alone, so they stay
    numbers. NULL becomes an empty cell. Budgets and any later CSV call this too.
    """
    if value is None:
        return ""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_START)
        and not PLAIN_NUMBER.match(value)
    ):
        return "'" + value
    return value


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
        try:
            local = day.astimezone(tz).date().isoformat()
        except OverflowError:
            # Within two days of year 1 or 9999 the query groups by UTC day
            # (see queries.daily_totals): the local date may not exist in Python.
            local = day.date().isoformat()
        return (
            local,
            row.tenant_id,
            row.user_id,
            row.source,
            credits_text(row.credits),
            row.records,
        )

    return values


def csv_header(columns: Sequence[str]) -> bytes:
    """The header line."""
    return _csv_lines([[csv_cell(c) for c in columns]])


def csv_encoder(values: Callable[[Any], tuple[Any, ...]]) -> Encoder:
    """Rows to CSV lines; every cell through `csv_cell`."""
    return lambda rows: _csv_lines([[csv_cell(v) for v in values(row)] for row in rows])


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
