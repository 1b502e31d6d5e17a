"""PostgreSQL: tell the planner that user_id depends on tenant_id in usage_records

Without it the planner multiplies the two selectivities and expects about one
row for a (tenant, user) filter where there are thousands (bench/ explain).

Revision ID: 5b2f0c9d1e7a
Revises: 30b4fc1d007b
Create Date: 2026-11-25 17:35:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b2f0c9d1e7a"
down_revision: str | Sequence[str] | None = "30b4fc1d007b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE STATISTICS IF NOT EXISTS st_usage_records_tenant_user (dependencies) "
        "ON tenant_id, user_id FROM usage_records"
    )
    op.execute(
        "CREATE STATISTICS IF NOT EXISTS st_interactions_tenant_user (dependencies) "
        "ON tenant_id, user_id FROM interactions"
    )
    op.execute("ANALYZE usage_records")
    op.execute("ANALYZE interactions")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP STATISTICS IF EXISTS st_interactions_tenant_user")
    op.execute("DROP STATISTICS IF EXISTS st_usage_records_tenant_user")
