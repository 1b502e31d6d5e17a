"""Budget periods: calendar days, weeks from Monday and months in a zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.budgets.periods import Period, latest, overlapping, period_of


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_day_in_copenhagen_follows_dst() -> None:
    spring = period_of(utc(2025, 3, 30, 12), Period.DAY, "Europe/Copenhagen")
    assert spring.start == utc(2025, 3, 29, 23)
    assert spring.length == timedelta(hours=23)
    autumn = period_of(utc(2025, 10, 26, 12), Period.DAY, "Europe/Copenhagen")
    assert autumn.start == utc(2025, 10, 25, 22)
    assert autumn.length == timedelta(hours=25)


def test_week_starts_on_monday_local_midnight() -> None:
    week = period_of(utc(2025, 10, 23, 10), Period.WEEK, "Europe/Copenhagen")
    assert week.start == utc(2025, 10, 19, 22)  # Monday 20 Oct 00:00 +02:00
    # DST ends inside the week: 7 days and an hour.
    assert week.length == timedelta(days=7, hours=1)


def test_month_and_instant_on_the_edge() -> None:
    month = period_of(utc(2025, 2, 1, 0), Period.MONTH, "UTC")
    assert (month.start, month.end) == (utc(2025, 2, 1), utc(2025, 3, 1))
    before = period_of(utc(2025, 1, 31, 23, 59, 59), Period.MONTH, "UTC")
    assert before.end == month.start
    kolkata = period_of(utc(2025, 1, 31, 18, 29), Period.MONTH, "Asia/Kolkata")
    assert kolkata.start == utc(2024, 12, 31, 18, 30)
    assert kolkata.end == utc(2025, 1, 31, 18, 30)


def test_latest_and_overlapping() -> None:
    days = latest(utc(2025, 3, 31, 1), Period.DAY, "UTC", 3)
    assert [d.start for d in days] == [
        utc(2025, 3, 31),
        utc(2025, 3, 30),
        utc(2025, 3, 29),
    ]
    months = overlapping(utc(2025, 1, 15), utc(2025, 3, 1), Period.MONTH, "UTC")
    assert [m.start for m in months] == [utc(2025, 1, 1), utc(2025, 2, 1)]
    assert overlapping(utc(2025, 1, 15), utc(2025, 1, 15), Period.MONTH, "UTC") == []
