"""Copy each usage record's tenant and user onto it, last usage per interaction;
indexes for tenant and user sums

Revision ID: 30b4fc1d007b
Revises: 122909b72243
Create Date: 2026-11-25 16:47:09.722911
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.types


revision: str = "30b4fc1d007b"
down_revision: str | Sequence[str] | None = "122909b72243"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage_records", sa.Column("tenant_id", sa.String(length=128), nullable=True)
    )
    op.add_column(
        "usage_records", sa.Column("user_id", sa.String(length=128), nullable=True)
    )
    op.execute(
        "UPDATE usage_records SET "
        "tenant_id = (SELECT i.tenant_id FROM interactions i WHERE i.id = usage_records.interaction_id), "
        "user_id = (SELECT i.user_id FROM interactions i WHERE i.id = usage_records.interaction_id) "
        "WHERE interaction_id IN (SELECT id FROM interactions)"
    )
    op.add_column(
        "interactions",
        sa.Column(
            "last_usage_at", service.db.types.UTCDateTime(timezone=True), nullable=True
        ),
    )
    op.execute(
        "UPDATE interactions SET last_usage_at = "
        "(SELECT max(r.created_at) FROM usage_records r WHERE r.interaction_id = interactions.id)"
    )
    op.create_index(
        "ix_usage_records_tenant_created",
        "usage_records",
        ["tenant_id", "created_at"],
        unique=False,
        postgresql_include=["source", "credits", "user_id", "interaction_id"],
    )
    op.create_index(
        "ix_usage_records_tenant_user_created",
        "usage_records",
        ["tenant_id", "user_id", "created_at"],
        unique=False,
        postgresql_include=["source", "credits", "interaction_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_usage_records_tenant_user_created",
        table_name="usage_records",
        postgresql_include=["source", "credits", "interaction_id"],
    )
    op.drop_index(
        "ix_usage_records_tenant_created",
        table_name="usage_records",
        postgresql_include=["source", "credits", "user_id", "interaction_id"],
    )
    op.drop_column("interactions", "last_usage_at")
    op.drop_column("usage_records", "user_id")
    op.drop_column("usage_records", "tenant_id")
