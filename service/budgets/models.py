"""Tables of the budgets domain.

A budget belongs to a tenant, or to one user inside it (`user_key` is the user
id, or "" for a tenant budget, so one UNIQUE constraint covers both kinds).
An alert is unique per (budget, period start, threshold): whichever writer
inserts it first wins, and nothing ever deletes it except deleting its budget.
Webhook endpoints and deliveries are in service/webhooks/models.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, new_uuid, utcnow
from service.db.models import ID_LENGTH
from service.db.types import Credits, CreditTotal, UTCDateTime


class Budget(Base):
    """A credit allowance per calendar period for a tenant or one of its users."""

    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_key", "period", name="uq_budgets_owner"),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name="fk_budgets_user_users",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("tenants.id"))
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # user_id, or "" for a tenant budget (NULLs are distinct in UNIQUE).
    user_key: Mapped[str] = mapped_column(String(ID_LENGTH))
    period: Mapped[str] = mapped_column(String(8))
    limit: Mapped[Decimal] = mapped_column(Credits)
    time_zone: Mapped[str] = mapped_column(String(64))
    thresholds: Mapped[list[int]] = mapped_column(JSON)
    enforce: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BudgetAlert(Base):
    """A threshold crossed in one period of a budget; never taken back."""

    __tablename__ = "budget_alerts"
    __table_args__ = (
        UniqueConstraint(
            "budget_id", "period_start", "threshold", name="uq_budget_alerts_once"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    budget_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("budgets.id", ondelete="CASCADE")
    )
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    threshold: Mapped[int] = mapped_column(Integer)
    crossed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[Decimal] = mapped_column(CreditTotal)
