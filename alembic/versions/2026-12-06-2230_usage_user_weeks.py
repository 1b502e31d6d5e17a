"""Per-user weekly rollup: usage_user_weeks

`usage_user_weeks` holds, per tenant, ISO week (from Monday 00:00 UTC), user
and source, the exact credit sum and the number of records of the registered
usage (the records carrying a tenant and user), like usage_user_days per
week. Users' totals and rankings over a range take its whole weeks from
here, the whole days beside them from usage_user_days, then whole hours from
usage_user_hours, and only what is left from the records: the largest
tenant's user ranking over 90 days summed 100k user-day rows at 10M records.
Written from now on by service.usage.rollups in the same transaction as the
records; this migration fills it from the records already stored.

Revision ID: 7a1f3c9e5b20
Revises: 5c2e8a41d7b3
Create Date: 2026-12-06 22:30:00.000000
"""

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "7a1f3c9e5b20"
down_revision: str | Sequence[str] | None = "5c2e8a41d7b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_user_weeks",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("week", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("credits", service.db.types.CreditTotal(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "week", "user_id", "source", name=op.f("pk_usage_user_weeks")
        ),
    )
    _fill()
    op.create_index(
        "ix_usage_user_weeks_user_week",
        "usage_user_weeks",
        ["tenant_id", "user_id", "week"],
        unique=False,
        postgresql_include=["source", "credits", "records"],
    )


def _fill() -> None:
    """The user-week sums of the registered records."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO usage_user_weeks"
            " (tenant_id, week, user_id, source, credits, records)"
            " SELECT tenant_id, date_trunc('week', created_at, 'UTC'), user_id,"
            " source, sum(credits), count(*) FROM usage_records"
            " WHERE tenant_id IS NOT NULL GROUP BY 1, 2, 3, 4"
        )
        return
    # SQLite keeps credits as padded text: add them exactly in Python.
    credits_type = service.db.types.CreditTotal()
    time_type = service.db.types.UTCDateTime()
    records = sa.table(
        "usage_records",
        sa.column("tenant_id", sa.String()),
        sa.column("user_id", sa.String()),
        sa.column("created_at", time_type),
        sa.column("source", sa.String()),
        sa.column("credits", credits_type),
    )
    weeks: dict[tuple, list] = {}
    rows = bind.execute(sa.select(records).where(records.c.tenant_id.is_not(None)))
    for tenant_id, user_id, created_at, source, credits in rows:
        day = created_at.replace(hour=0, minute=0, second=0, microsecond=0)
        week = day - timedelta(days=day.weekday())
        entry = weeks.setdefault((tenant_id, week, user_id, source), [Decimal(0), 0])
        entry[0] += credits
        entry[1] += 1
    week_table = sa.table(
        "usage_user_weeks",
        sa.column("tenant_id", sa.String()),
        sa.column("week", time_type),
        sa.column("user_id", sa.String()),
        sa.column("source", sa.String()),
        sa.column("credits", credits_type),
        sa.column("records", sa.BigInteger()),
    )
    if weeks:
        op.bulk_insert(
            week_table,
            [
                {
                    "tenant_id": k[0],
                    "week": k[1],
                    "user_id": k[2],
                    "source": k[3],
                    "credits": v[0],
                    "records": v[1],
                }
                for k, v in weeks.items()
            ],
        )


def downgrade() -> None:
    op.drop_index(
        "ix_usage_user_weeks_user_week",
        table_name="usage_user_weeks",
        postgresql_include=["source", "credits", "records"],
    )
    op.drop_table("usage_user_weeks")
