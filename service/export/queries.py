"""The SQL behind the exports: one row per usage record, or per day and user.

Both statements are meant for `AsyncSession.stream()`: PostgreSQL answers them
through a server-side cursor and SQLite through a stepping cursor, so the rows
travel in fixed-size batches and memory stays flat whatever the row count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select

from service.db.models import Interaction, UsageRecord
from service.db.sql import credit_sum, tz_trunc
from service.usage.queries import TimeWindow
from service.usage.records import Source

RowsSelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class ExportFilter:
    """Which usage records an export covers (already scoped to the caller)."""

    tenant_id: str | None = None
    user_id: str | None = None
    interaction_id: str | None = None
    source: Source | None = None
    window: TimeWindow = field(default_factory=TimeWindow)

    @property
    def attributed_only(self) -> bool:
        """Whether only records of registered interactions can match."""
        return self.tenant_id is not None or self.user_id is not None

    def clauses(self) -> list[ColumnElement[bool]]:
        """WHERE clauses over usage_records joined to interactions."""
        clauses = self.window.filters()
        if self.tenant_id is not None:
            clauses.append(Interaction.tenant_id == self.tenant_id)
        if self.user_id is not None:
            clauses.append(Interaction.user_id == self.user_id)
        if self.interaction_id is not None:
            clauses.append(UsageRecord.interaction_id == self.interaction_id)
        if self.source is not None:
            clauses.append(UsageRecord.source == self.source.value)
        return clauses


def _joined(statement: RowsSelect, where: ExportFilter) -> RowsSelect:
    """From usage_records, with the interaction's tenant and user (if any)."""
    return (
        statement.select_from(UsageRecord)
        .join(
            Interaction,
            Interaction.id == UsageRecord.interaction_id,
            isouter=not where.attributed_only,
        )
        .where(*where.clauses())
    )


def usage_records(where: ExportFilter) -> RowsSelect:
    """One row per usage record, oldest first; tenant and user NULL if unknown."""
    statement = select(
        UsageRecord.interaction_id,
        Interaction.user_id,
        Interaction.tenant_id,
        UsageRecord.source,
        UsageRecord.external_id,
        UsageRecord.credits,
        UsageRecord.created_at,
    )
    return _joined(statement, where).order_by(
        UsageRecord.created_at, UsageRecord.source, UsageRecord.external_id
    )


def daily_totals(where: ExportFilter, zone_name: str) -> RowsSelect:
    """Credits and record counts per local day, tenant, user and source."""
    day = tz_trunc(UsageRecord.created_at, "day", zone_name)
    statement = select(
        day.label("day"),
        Interaction.tenant_id,
        Interaction.user_id,
        UsageRecord.source,
        credit_sum(UsageRecord.credits).label("credits"),
        func.count().label("records"),
    )
    keys = (day, Interaction.tenant_id, Interaction.user_id, UsageRecord.source)
    return _joined(statement, where).group_by(*keys).order_by(*keys)
