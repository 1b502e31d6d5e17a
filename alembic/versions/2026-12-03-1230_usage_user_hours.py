"""Per-user hourly rollup: usage_user_hours

`usage_user_hours` holds, per tenant, UTC hour, user and source, the exact
credit sum and the number of records of the registered usage (the records
carrying a tenant and user), like usage_user_days per hour. Readers take a
range's whole UTC days from usage_user_days, its whole hours beside them from
here, and only what is left (less than an hour at each end) from the
records; users' buckets in a zone whose days do not start at UTC midnight
read whole hours from here instead of every record. Written from now on by
service.usage.rollups in the same transaction as the records; this migration
fills it from the records already stored.

Revision ID: 5c2e8a41d7b3
Revises: 9d4e1b7c2a60
Create Date: 2026-12-03 12:30:00.000000
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "5c2e8a41d7b3"
down_revision: str | Sequence[str] | None = "9d4e1b7c2a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_user_hours",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("hour", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("credits", service.db.types.CreditTotal(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "hour", "user_id", "source", name=op.f("pk_usage_user_hours")
        ),
    )
    _fill()
    op.create_index(
        "ix_usage_user_hours_user_hour",
        "usage_user_hours",
        ["tenant_id", "user_id", "hour"],
        unique=False,
        postgresql_include=["source", "credits", "records"],
    )


def _fill() -> None:
    """The user-hour sums of the registered records."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO usage_user_hours"
            " (tenant_id, hour, user_id, source, credits, records)"
            " SELECT tenant_id, date_trunc('hour', created_at, 'UTC'), user_id,"
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
    hours: dict[tuple, list] = {}
    rows = bind.execute(sa.select(records).where(records.c.tenant_id.is_not(None)))
    for tenant_id, user_id, created_at, source, credits in rows:
        hour = created_at.replace(minute=0, second=0, microsecond=0)
        entry = hours.setdefault((tenant_id, hour, user_id, source), [Decimal(0), 0])
        entry[0] += credits
        entry[1] += 1
    hour_table = sa.table(
        "usage_user_hours",
        sa.column("tenant_id", sa.String()),
        sa.column("hour", time_type),
        sa.column("user_id", sa.String()),
        sa.column("source", sa.String()),
        sa.column("credits", credits_type),
        sa.column("records", sa.BigInteger()),
    )
    if hours:
        op.bulk_insert(
            hour_table,
            [
                {
                    "tenant_id": k[0],
                    "hour": k[1],
                    "user_id": k[2],
                    "source": k[3],
                    "credits": v[0],
                    "records": v[1],
                }
                for k, v in hours.items()
            ],
        )


def downgrade() -> None:
    op.drop_index(
        "ix_usage_user_hours_user_hour",
        table_name="usage_user_hours",
        postgresql_include=["source", "credits", "records"],
    )
    op.drop_table("usage_user_hours")
