"""SQL of the budgets domain. Only flushes; never commits."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    Text,
    any_,
    bindparam,
    delete,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.budgets.models import Budget, BudgetAlert
from service.budgets.periods import Window
from service.db.base import new_uuid
from service.db.direct import Direct
from service.db.sql import text_pairs


def lock_key(*parts: object) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock, from any parts."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Built once: every usage write runs it (the alert decision). PostgreSQL takes
# arrays (an expanding IN renders its SQL anew for every call); SQLite has none.
# Core rows, not ORM entities (service.db.direct): the ORM's loading cost more
# than the statement on the webhook path.
_BUDGET_COLUMNS = tuple(Budget.__table__.columns)
_OF_OWNERS = {
    "postgresql": Direct(
        select(*_BUDGET_COLUMNS).where(
            Budget.tenant_id == any_(bindparam("tenants", type_=ARRAY(Text))),
            or_(
                Budget.user_key == "",
                tuple_(Budget.tenant_id, Budget.user_key).in_(
                    text_pairs("pair_tenants", "pair_users")
                ),
            ),
        )
    ),
    "sqlite": Direct(
        select(*_BUDGET_COLUMNS).where(
            Budget.tenant_id.in_(bindparam("tenants", expanding=True)),
            or_(
                Budget.user_key == "",
                tuple_(Budget.tenant_id, Budget.user_key).in_(
                    bindparam("pairs", expanding=True)
                ),
            ),
        )
    ),
}


class BudgetRepository:
    """Budgets and alerts."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.session.get_bind().dialect.name

    def _insert(self, table: Any) -> Any:
        module = postgresql if self.dialect == "postgresql" else sqlite
        return module.insert(table)

    async def lock(self, keys: Iterable[int]) -> None:
        """Transaction-scoped locks (PostgreSQL), taken in key order so two
        writers never wait on each other crosswise. SQLite writers are
        serialised already (BEGIN IMMEDIATE)."""
        if self.dialect != "postgresql":
            return
        ordered = sorted(set(keys))
        if not ordered:
            return
        # One statement; the ordered subquery takes them in key order.
        await self.session.execute(
            text(
                "SELECT pg_advisory_xact_lock(k) FROM ("
                " SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k"
                ") AS ordered"
            ),
            {"keys": ordered},
        )

    # Budgets

    async def by_owner(
        self, tenant_id: str, user_id: str | None, period: str
    ) -> Budget | None:
        """The budget of (tenant, user, period), if set."""
        result = await self.session.execute(
            select(Budget)
            .where(
                Budget.tenant_id == tenant_id,
                Budget.user_key == (user_id or ""),
                Budget.period == period,
            )
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def by_ids(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Budget]:
        """Budgets by id."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Budget).where(Budget.id.in_(list(ids)))
        )
        return {row.id: row for row in rows.scalars()}

    async def of_tenants(self, tenant_ids: Sequence[str]) -> list[Budget]:
        """Every budget (tenant and user) of the given tenants."""
        if not tenant_ids:
            return []
        rows = await self.session.execute(
            select(Budget)
            .where(Budget.tenant_id.in_(sorted(set(tenant_ids))))
            .order_by(Budget.tenant_id, Budget.user_key, Budget.period)
        )
        return list(rows.scalars())

    async def all_budgets(self) -> list[Budget]:
        """Every budget, by tenant, user and period."""
        rows = await self.session.execute(
            select(Budget).order_by(Budget.tenant_id, Budget.user_key, Budget.period)
        )
        return list(rows.scalars())

    async def of_owners(self, owners: Sequence[tuple[str, str]]) -> list[Budget]:
        """Budgets that usage of these (tenant, user) owners counts against:
        each tenant's own and each user's."""
        if not owners:
            return []
        tenants = sorted({t for t, _ in owners})
        pairs = sorted(set(owners))
        if self.dialect == "postgresql":
            parameters: dict[str, Any] = {
                "tenants": tenants,
                "pair_tenants": [tenant for tenant, _ in pairs],
                "pair_users": [user for _, user in pairs],
            }
        else:
            parameters = {"tenants": tenants, "pairs": pairs}
        rows = await _OF_OWNERS[self.dialect].rows(self.session, parameters)
        # Read-only copies (not in the session): callers only read them.
        names = [column.key for column in _BUDGET_COLUMNS]
        return [Budget(**dict(zip(names, row, strict=True))) for row in rows]

    async def delete_budget(self, budget_id: uuid.UUID) -> bool:
        """Delete a budget and its alerts; True if it existed."""
        await self.session.execute(
            delete(BudgetAlert).where(BudgetAlert.budget_id == budget_id)
        )
        result = await self.session.execute(
            delete(Budget).where(Budget.id == budget_id)
        )
        return bool(getattr(result, "rowcount", 0))

    # Alerts

    async def insert_alert(
        self,
        budget: Budget,
        window: Window,
        threshold: int,
        crossed_at: datetime,
        used: Decimal,
    ) -> BudgetAlert | None:
        """The new alert, or None when this (budget, period, threshold) has one."""
        alert_id = new_uuid()
        result = await self.session.execute(
            self._insert(BudgetAlert)
            .values(
                id=alert_id,
                budget_id=budget.id,
                period_start=window.start,
                period_end=window.end,
                threshold=threshold,
                crossed_at=crossed_at,
                used=used,
            )
            .on_conflict_do_nothing(
                index_elements=["budget_id", "period_start", "threshold"]
            )
            .returning(BudgetAlert.id)
        )
        if result.scalar_one_or_none() is None:
            return None
        return BudgetAlert(
            id=alert_id,
            budget_id=budget.id,
            period_start=window.start,
            period_end=window.end,
            threshold=threshold,
            crossed_at=crossed_at,
            used=used,
        )

    async def crossed(
        self, pairs: Sequence[tuple[uuid.UUID, datetime]]
    ) -> set[tuple[uuid.UUID, datetime, int]]:
        """(budget, period start, threshold) of the alerts already stored."""
        if not pairs:
            return set()
        wanted = set(pairs)
        rows = await self.session.execute(
            select(
                BudgetAlert.budget_id, BudgetAlert.period_start, BudgetAlert.threshold
            ).where(
                BudgetAlert.budget_id.in_(sorted({b for b, _ in wanted})),
                BudgetAlert.period_start.in_(sorted({s for _, s in wanted})),
            )
        )
        return {(r[0], r[1], r[2]) for r in rows if (r[0], r[1]) in wanted}

    async def alert(self, alert_id: uuid.UUID) -> BudgetAlert | None:
        """One alert by id."""
        return await self.session.get(BudgetAlert, alert_id)
