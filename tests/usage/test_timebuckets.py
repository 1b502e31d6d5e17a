"""Bucket edges in IANA zones: pure calendar arithmetic, no database."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.db.timebuckets import (
    TooManyBuckets,
    edges,
    next_edge,
    sqlite_truncate,
    truncate,
    zone,
)

CPH = zone("Europe/Copenhagen")
NYC = zone("America/New_York")
KOLKATA = zone("Asia/Kolkata")
HOWE = zone("Australia/Lord_Howe")
ZONES = [
    "UTC",
    "Europe/Copenhagen",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Havana",
    "Atlantic/Azores",
    "CET",
]
HOUR = timedelta(hours=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def lengths(bounds: list[datetime]) -> list[timedelta]:
    return [b - a for a, b in pairwise(bounds)]


class TestDays:
    def test_spring_forward_day_is_23_hours(self) -> None:
        start = truncate(utc("2025-03-30 12:00"), "day", CPH)
        assert start == utc("2025-03-29 23:00")
        assert next_edge(start, "day", CPH) == utc("2025-03-30 22:00")

    def test_fall_back_day_is_25_hours(self) -> None:
        start = truncate(utc("2025-10-26 12:00"), "day", CPH)
        assert start == utc("2025-10-25 22:00")
        assert next_edge(start, "day", CPH) == utc("2025-10-26 23:00")

    def test_days_around_dst_in_new_york(self) -> None:
        bounds = edges(utc("2025-03-08 05:00"), utc("2025-03-11 04:00"), "day", NYC, 10)
        assert bounds == [
            utc("2025-03-08 05:00"),
            utc("2025-03-09 05:00"),
            utc("2025-03-10 04:00"),
            utc("2025-03-11 04:00"),
        ]
        assert lengths(bounds) == [24 * HOUR, 23 * HOUR, 24 * HOUR]

    def test_half_hour_offset(self) -> None:
        assert truncate(utc("2025-03-30 18:29:59"), "day", KOLKATA) == utc(
            "2025-03-29 18:30"
        )
        assert truncate(utc("2025-03-30 18:30"), "day", KOLKATA) == utc(
            "2025-03-30 18:30"
        )


class TestHours:
    def test_fall_back_day_has_25_hours_each_one_long(self) -> None:
        bounds = edges(
            utc("2025-10-25 22:00"), utc("2025-10-26 23:00"), "hour", CPH, 100
        )
        assert len(bounds) - 1 == 25
        assert set(lengths(bounds)) == {HOUR}
        # 02:30 local happens twice: once in each of two different buckets.
        assert truncate(utc("2025-10-26 00:30"), "hour", CPH) == utc("2025-10-26 00:00")
        assert truncate(utc("2025-10-26 01:30"), "hour", CPH) == utc("2025-10-26 01:00")

    def test_spring_forward_day_has_23_hours(self) -> None:
        bounds = edges(
            utc("2025-03-29 23:00"), utc("2025-03-30 22:00"), "hour", CPH, 100
        )
        assert len(bounds) - 1 == 23
        assert set(lengths(bounds)) == {HOUR}

    def test_kolkata_hours_start_at_half_past_utc(self) -> None:
        bounds = edges(
            utc("2025-03-30 00:00"), utc("2025-03-30 03:00"), "hour", KOLKATA, 10
        )
        assert bounds == [
            utc("2025-03-29 23:30"),
            utc("2025-03-30 00:30"),
            utc("2025-03-30 01:30"),
            utc("2025-03-30 02:30"),
            utc("2025-03-30 03:30"),
        ]

    def test_lord_howe_half_hour_shift_makes_a_half_hour_bucket(self) -> None:
        # DST ends 2025-04-06 02:00 +11:00 (15:00Z): the clock goes back to 01:30.
        bounds = edges(
            utc("2025-04-05 13:00"), utc("2025-04-05 17:00"), "hour", HOWE, 10
        )
        assert bounds == [
            utc("2025-04-05 13:00"),
            utc("2025-04-05 14:00"),  # 01:00 +11:00
            utc("2025-04-05 15:00"),  # 01:30 +10:30, the offset changes
            utc("2025-04-05 15:30"),  # 02:00 +10:30
            utc("2025-04-05 16:30"),
            utc("2025-04-05 17:30"),
        ]
        assert truncate(utc("2025-04-05 14:59:59"), "hour", HOWE) == utc(
            "2025-04-05 14:00"
        )
        assert truncate(utc("2025-04-05 15:10"), "hour", HOWE) == utc(
            "2025-04-05 15:00"
        )


class TestWeeksAndMonths:
    def test_weeks_start_on_monday_local_midnight(self) -> None:
        # 2025-03-02 is a Sunday; 2025-03-03 a Monday.
        assert truncate(utc("2025-03-02 23:59"), "week", zone("UTC")) == utc(
            "2025-02-24 00:00"
        )
        assert truncate(utc("2025-03-03 00:00"), "week", zone("UTC")) == utc(
            "2025-03-03 00:00"
        )
        # Monday 00:00 in Copenhagen is Sunday 23:00 UTC.
        assert truncate(utc("2025-03-02 23:30"), "week", CPH) == utc("2025-03-02 23:00")
        assert truncate(utc("2025-03-02 22:59"), "week", CPH) == utc("2025-02-23 23:00")

    def test_week_holding_a_dst_change_is_shorter(self) -> None:
        start = truncate(utc("2025-03-05 12:00"), "week", NYC)
        assert start == utc("2025-03-03 05:00")
        assert next_edge(start, "week", NYC) - start == 7 * 24 * HOUR - HOUR

    def test_months(self) -> None:
        bounds = edges(
            utc("2025-01-15 00:00"), utc("2025-04-01 04:00"), "month", NYC, 10
        )
        assert bounds == [
            utc("2025-01-01 05:00"),
            utc("2025-02-01 05:00"),
            utc("2025-03-01 05:00"),
            utc("2025-04-01 04:00"),
        ]
        assert next_edge(utc("2024-12-31 18:30"), "month", KOLKATA) == utc(
            "2025-01-31 18:30"
        )
        assert next_edge(utc("2025-12-01 00:00"), "month", zone("UTC")) == utc(
            "2026-01-01 00:00"
        )


class TestEdges:
    def test_range_on_edges_covers_exactly(self) -> None:
        bounds = edges(utc("2025-03-01"), utc("2025-03-04"), "day", zone("UTC"), 10)
        assert bounds == [
            utc("2025-03-01"),
            utc("2025-03-02"),
            utc("2025-03-03"),
            utc("2025-03-04"),
        ]

    def test_range_inside_one_bucket(self) -> None:
        bounds = edges(
            utc("2025-03-01 10:00"), utc("2025-03-01 11:00"), "day", zone("UTC"), 10
        )
        assert bounds == [utc("2025-03-01"), utc("2025-03-02")]

    def test_empty_range_has_no_buckets(self) -> None:
        assert (
            edges(utc("2025-03-01 10:00"), utc("2025-03-01 10:00"), "day", CPH, 10)
            == []
        )

    def test_limit(self) -> None:
        start = utc("2025-01-01")
        assert len(edges(start, start + 1000 * HOUR, "hour", zone("UTC"), 1000)) == 1001
        with pytest.raises(TooManyBuckets):
            edges(start, start + 1001 * HOUR, "hour", zone("UTC"), 1000)

    def test_dates_past_the_calendar_are_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="date"):
            edges(utc("9999-12-01"), utc("9999-12-31"), "month", zone("UTC"), 1000)


class TestZones:
    @pytest.mark.parametrize(
        "name", ["Mars/Olympus", "", "utc ", "../etc/passwd", "localtime"]
    )
    def test_unknown_names_are_refused(self, name: str) -> None:
        with pytest.raises(KeyError):
            zone(name)

    def test_sqlite_function_matches_python(self) -> None:
        assert sqlite_truncate(
            "2025-10-26 01:30:00.000000", "hour", "Europe/Copenhagen"
        ) == ("2025-10-26 01:00:00.000000")
        assert sqlite_truncate("2025-03-30 18:30:00", "day", "Asia/Kolkata") == (
            "2025-03-30 18:30:00.000000"
        )
        assert sqlite_truncate(None, "day", "UTC") is None


instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)
).map(lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(
    instant=instants,
    unit=st.sampled_from(["hour", "day", "week", "month"]),
    name=st.sampled_from(ZONES),
)
def test_every_instant_lies_in_the_bucket_it_truncates_to(
    instant: datetime, unit: str, name: str
) -> None:
    tz = zone(name)
    start = truncate(instant, unit, tz)
    end = next_edge(start, unit, tz)
    assert start <= instant < end
    # The bucket is idempotent and its end starts the next one.
    assert truncate(start, unit, tz) == start
    assert truncate(end, unit, tz) == end
    local = start.astimezone(tz)
    if unit != "hour":
        assert (local.hour, local.minute) in {(0, 0), (1, 0), (0, 30)}
    if unit == "week":
        assert local.weekday() == 0
    if unit == "month":
        assert local.day == 1


def _offset_changes(name: str) -> list[datetime]:
    tz = zone(name)
    found = []
    instant = utc("2024-01-01 00:00")
    offset = instant.astimezone(tz).utcoffset()
    while instant < utc("2026-01-01 00:00"):
        instant += timedelta(minutes=15)
        if instant.astimezone(tz).utcoffset() != offset:
            offset = instant.astimezone(tz).utcoffset()
            found.append(instant)
    return found


@pytest.mark.parametrize("name", [z for z in ZONES if "/K" not in z and z != "UTC"])
def test_buckets_partition_time_around_offset_changes(name: str) -> None:
    """Around each DST change: truncate agrees with edges, to the microsecond."""
    tz = zone(name)
    changes = _offset_changes(name)
    assert len(changes) == 4
    for change in changes:
        start, end = change - 4 * HOUR, change + 4 * HOUR
        for unit in ("hour", "day", "week", "month"):
            bounds = edges(start, end, unit, tz, 1000)
            assert bounds == sorted(set(bounds))
            if unit == "hour":
                assert max(lengths(bounds)) <= HOUR
            probes = [start + n * timedelta(minutes=5) for n in range(97)]
            probes += bounds[1:-1] + [
                b - timedelta(microseconds=1) for b in bounds[1:-1]
            ]
            for instant in probes:
                assert (
                    truncate(instant, unit, tz)
                    == bounds[bisect_right(bounds, instant) - 1]
                )
