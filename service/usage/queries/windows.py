"""Rollup windows: a time window cut into whole rollup steps and ragged ends."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from service.db.models import TenantHourUsage, UserDayUsage
from service.usage import rollups
from service.usage.queries._sql import in_
from service.usage.queries.models import Owner, TimeWindow, time_range


@dataclass(frozen=True)
class Split:
    """A window cut into whole rollup steps (`inner`) and raw ends (`edges`)."""

    inner: TimeWindow | None
    edges: list[TimeWindow]

    def edge_filter(self) -> ColumnElement[bool] | None:
        """Records inside the edges (None: there are none)."""
        ranges = [and_(*edge.filters()) for edge in self.edges]
        if not ranges:
            return None
        return ranges[0] if len(ranges) == 1 else or_(*ranges)


def split(window: TimeWindow, step: timedelta) -> Split:
    """Whole UTC hours or days of `window` (from a rollup) and the rest."""
    floor = rollups.hour_of if step == rollups.HOUR else rollups.day_of

    def ceil(instant: datetime) -> datetime:
        start = floor(instant)
        return start if start == instant else start + step

    inner_start = None if window.start is None else ceil(window.start)
    inner_end = None if window.end is None else floor(window.end)
    if inner_start is not None and inner_end is not None and inner_start >= inner_end:
        return Split(inner=None, edges=[window])
    edges = []
    if window.start is not None and inner_start != window.start:
        edges.append(TimeWindow(window.start, inner_start))
    if window.end is not None and inner_end != window.end:
        edges.append(TimeWindow(inner_end, window.end))
    return Split(inner=TimeWindow(inner_start, inner_end), edges=edges)


def rollup_of(owner: Owner) -> tuple[Any, Any, timedelta]:
    """The rollup table for tenants or users, its time column and step."""
    if owner is Owner.TENANT:
        table = TenantHourUsage.__table__
        return table, table.c.hour, rollups.HOUR
    table = UserDayUsage.__table__
    return table, table.c.day, rollups.DAY


def rollup_filters(
    owner: Owner, keys: Sequence[Hashable], inner: TimeWindow
) -> tuple[Any, list[Any], list[ColumnElement[bool]]]:
    """The rollup, its owner columns, and WHERE clauses for `inner`."""
    table, time, _ = rollup_of(owner)
    names = ["tenant_id", "user_id"] if owner is Owner.USER else ["tenant_id"]
    columns = [table.c[name] for name in names]
    clauses = [in_(columns, keys), table.c.records > 0, *time_range(time, inner)]
    return table, columns, clauses
