"""The DateTime scalar's output: ISO-8601 in UTC with a `Z`, whatever the
offset of the value (the database types return UTC; the fast path for those
must print what the general one prints)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.graphql.scalars import serialize_datetime


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 3, 1, 23, 0, tzinfo=UTC), "2026-03-01T23:00:00Z"),
        (
            datetime(2026, 3, 1, 23, 0, 5, 120, tzinfo=UTC),
            "2026-03-01T23:00:05.000120Z",
        ),
        (
            datetime(
                2026, 3, 2, 1, 30, tzinfo=timezone(timedelta(hours=2, minutes=30))
            ),
            "2026-03-01T23:00:00Z",
        ),
        (
            datetime(2026, 3, 1, 23, 0, tzinfo=timezone(timedelta(0), "GMT")),
            "2026-03-01T23:00:00Z",
        ),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
    ],
)
def test_datetimes_are_printed_in_utc_with_z(value: datetime, text: str) -> None:
    assert serialize_datetime(value) == text
