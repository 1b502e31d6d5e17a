"""SQL helpers shared by the read queries: owner columns, IN-lists, unions."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select, union_all

from service.db.models import Interaction, UsageRecord
from service.db.sql import credit_sum
from service.usage.queries.models import Owner

INTERACTION_COLUMNS = (
    Interaction.id,
    Interaction.tenant_id,
    Interaction.user_id,
    Interaction.created_at,
)


def owner_columns(owner: Owner) -> list[Any]:
    """Usage-record columns naming the owner (the copies kept on each record)."""
    if owner is Owner.TENANT:
        return [UsageRecord.tenant_id]
    if owner is Owner.USER:
        return [UsageRecord.tenant_id, UsageRecord.user_id]
    return [UsageRecord.interaction_id]


def interaction_owner_columns(owner: Owner) -> list[Any]:
    """Interaction columns naming its tenant or user."""
    if owner is Owner.USER:
        return [Interaction.tenant_id, Interaction.user_id]
    return [Interaction.tenant_id]


def in_(columns: list[Any], keys: Sequence[Hashable]) -> ColumnElement[bool]:
    """Rows of the given owners, or a superset of them for (tenant, user) keys.

    For users, `tenant IN (...) AND user IN (...)` lets PostgreSQL read the
    (tenant_id, user_id, created_at) index directly (a row-value IN list turns
    into a bitmap OR over the heap). It is exact for one tenant; with several,
    callers drop the groups of owners they did not ask for.
    """
    if len(columns) > 1:
        tenants = sorted({key[0] for key in keys})  # type: ignore[index]
        users = sorted({key[1] for key in keys})  # type: ignore[index]
        return and_(columns[0].in_(tenants), columns[1].in_(users))
    condition: ColumnElement[bool] = columns[0].in_(list(keys))
    return condition


def owner_filter(owner: Owner, keys: Sequence[Hashable]) -> ColumnElement[bool]:
    """Usage records of the given owners (or a superset, see `in_`)."""
    return in_(owner_columns(owner), keys)


def key_of(owner: Owner, row: Any) -> Hashable:
    """The owner key of a result row whose first columns name the owner."""
    return (row[0], row[1]) if owner is Owner.USER else row[0]


def union(parts: list[Any]) -> Any:
    """One SELECT, or the UNION ALL of several."""
    first, *rest = parts
    return union_all(first, *rest) if rest else first


def raw_sums(
    owner: Owner, keys: Sequence[Hashable], where: list[ColumnElement[bool]]
) -> Select[Any]:
    """Credits and record counts per owner and source, from the records."""
    columns = owner_columns(owner)
    return (
        select(
            *columns,
            UsageRecord.source,
            credit_sum(UsageRecord.credits),
            func.count(),
        )
        .where(owner_filter(owner, keys), *where)
        .group_by(*columns, UsageRecord.source)
    )
