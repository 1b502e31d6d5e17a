"""Per-interaction aggregates: usage_interaction_days, interactions.first_usage_at

`usage_interaction_days` holds, per interaction, UTC day and source, the
exact credit sum and the number of records (every record naming the
interaction, registered or not). `interactions.first_usage_at` joins
`last_usage_at`; both order and bound the pages of `interactions(range:)`
(new indexes per tenant and per user). Written from now on by
service.usage.rollups and the repository in the same transaction as the
records; this migration fills them from the records already stored.

Revision ID: 9d4e1b7c2a60
Revises: 3f8b2c6d9e14
Create Date: 2026-12-02 07:00:00.000000
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "9d4e1b7c2a60"
down_revision: str | Sequence[str] | None = "3f8b2c6d9e14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_interaction_days",
        sa.Column("interaction_id", sa.String(length=128), nullable=False),
        sa.Column("day", service.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("credits", service.db.types.CreditTotal(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "interaction_id", "day", "source", name=op.f("pk_usage_interaction_days")
        ),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "first_usage_at",
                service.db.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    _fill()
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_tenant_user")
        batch_op.create_index(
            "ix_interactions_tenant_user_last_usage",
            ["tenant_id", "user_id", "last_usage_at", "id"],
            unique=False,
            postgresql_include=["first_usage_at", "created_at"],
        )
        batch_op.create_index(
            "ix_interactions_tenant_last_usage",
            ["tenant_id", "last_usage_at", "id"],
            unique=False,
            postgresql_include=["first_usage_at", "user_id", "created_at"],
        )


def _fill() -> None:
    """The interaction-day sums and the first and last usage times."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "INSERT INTO usage_interaction_days"
            " (interaction_id, day, source, credits, records)"
            " SELECT interaction_id, date_trunc('day', created_at, 'UTC'), source,"
            " sum(credits), count(*) FROM usage_records"
            " WHERE interaction_id IS NOT NULL GROUP BY 1, 2, 3"
        )
        op.execute(
            "UPDATE interactions AS i SET first_usage_at = s.f, last_usage_at = s.l"
            " FROM (SELECT interaction_id, min(created_at) AS f,"
            " max(created_at) AS l FROM usage_records"
            " WHERE interaction_id IS NOT NULL GROUP BY 1) AS s"
            " WHERE i.id = s.interaction_id"
        )
        return
    op.execute(
        "UPDATE interactions SET"
        " first_usage_at = (SELECT min(r.created_at) FROM usage_records AS r"
        " WHERE r.interaction_id = interactions.id),"
        " last_usage_at = (SELECT max(r.created_at) FROM usage_records AS r"
        " WHERE r.interaction_id = interactions.id)"
    )
    # SQLite keeps credits as padded text: add them exactly in Python.
    credits_type = service.db.types.CreditTotal()
    time_type = service.db.types.UTCDateTime()
    records = sa.table(
        "usage_records",
        sa.column("interaction_id", sa.String()),
        sa.column("created_at", time_type),
        sa.column("source", sa.String()),
        sa.column("credits", credits_type),
    )
    days: dict[tuple, list] = {}
    rows = bind.execute(
        sa.select(records).where(records.c.interaction_id.is_not(None))
    )
    for interaction_id, created_at, source, credits in rows:
        day = created_at.replace(hour=0, minute=0, second=0, microsecond=0)
        entry = days.setdefault((interaction_id, day, source), [Decimal(0), 0])
        entry[0] += credits
        entry[1] += 1
    day_table = sa.table(
        "usage_interaction_days",
        sa.column("interaction_id", sa.String()),
        sa.column("day", time_type),
        sa.column("source", sa.String()),
        sa.column("credits", credits_type),
        sa.column("records", sa.BigInteger()),
    )
    if days:
        op.bulk_insert(
            day_table,
            [
                {
                    "interaction_id": k[0],
                    "day": k[1],
                    "source": k[2],
                    "credits": v[0],
                    "records": v[1],
                }
                for k, v in days.items()
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_interactions_tenant_last_usage",
            postgresql_include=["first_usage_at", "user_id", "created_at"],
        )
        batch_op.drop_index(
            "ix_interactions_tenant_user_last_usage",
            postgresql_include=["first_usage_at", "created_at"],
        )
        batch_op.create_index(
            "ix_interactions_tenant_user", ["tenant_id", "user_id"], unique=False
        )
        batch_op.drop_column("first_usage_at")
    op.drop_table("usage_interaction_days")
