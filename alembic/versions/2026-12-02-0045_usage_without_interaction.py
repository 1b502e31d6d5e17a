"""usage without an interaction: usage_records.interaction_id nullable

Usage from stateless Corti calls (facts, coding, dictation) may be attributed
to a tenant and user directly: such a record has no interaction_id, and its
owner is held in the existing owner-copy columns tenant_id/user_id.

The BI views are re-created from the records' owner columns (they joined
interactions before, which has no row for directly attributed usage; the
owner copy equals the interaction's owner for every other record). On SQLite
the table is rebuilt (batch mode), so the views are dropped around it.

Revision ID: 3f8b2c6d9e14
Revises: 7a1c0e5d2f10
Create Date: 2026-12-02 00:45:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "3f8b2c6d9e14"
down_revision: str | Sequence[str] | None = "7a1c0e5d2f10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL = (
    """
    CREATE VIEW usage_records_v AS
    SELECT r.id, r.source, r.external_id, r.interaction_id,
           r.tenant_id, r.user_id, r.credits, r.created_at, r.received_at
    FROM usage_records AS r
    """,
    """
    CREATE VIEW daily_usage_v AS
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day,
           r.tenant_id, r.user_id, r.source,
           sum(r.credits) AS credits, count(*) AS records
    FROM usage_records AS r
    GROUP BY 1, 2, 3, 4
    """,
)

_WHOLE = "CAST(substr(r.credits, 1, instr(r.credits, '.') - 1) AS INTEGER)"
_FRACTION = "CAST(substr(r.credits, instr(r.credits, '.') + 1) AS INTEGER)"
SQLITE = (
    f"""
    CREATE VIEW usage_records_v AS
    SELECT r.id, r.source, r.external_id, r.interaction_id,
           r.tenant_id, r.user_id,
           CAST({_WHOLE} AS TEXT) || substr(r.credits, instr(r.credits, '.'))
             AS credits,
           r.created_at, r.received_at
    FROM usage_records AS r
    """,
    f"""
    CREATE VIEW daily_usage_v AS
    SELECT day, tenant_id, user_id, source,
           CAST(whole + fraction / 1000000000 AS TEXT) || '.'
             || substr('000000000' || (fraction % 1000000000), -9, 9) AS credits,
           records
    FROM (
        SELECT date(r.created_at) AS day, r.tenant_id, r.user_id, r.source,
               sum({_WHOLE}) AS whole, sum({_FRACTION}) AS fraction,
               count(*) AS records
        FROM usage_records AS r
        GROUP BY 1, 2, 3, 4
    ) AS per_day
    """,
)


def _drop_views() -> None:
    op.execute("DROP VIEW IF EXISTS daily_usage_v")
    op.execute("DROP VIEW IF EXISTS usage_records_v")


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    _drop_views()
    with op.batch_alter_table("usage_records") as batch:
        batch.alter_column(
            "interaction_id", existing_type=sa.String(length=128), nullable=True
        )
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    # Directly attributed usage has no interaction to fall back on (its rollup
    # rows stay: run service.usage.rollups.rebuild after a downgrade).
    op.execute("DELETE FROM usage_records WHERE interaction_id IS NULL")
    _drop_views()
    with op.batch_alter_table("usage_records") as batch:
        batch.alter_column(
            "interaction_id", existing_type=sa.String(length=128), nullable=False
        )
    # The earlier views (joined to interactions), from their own migration.
    path = Path(__file__).with_name("2026-11-25-1620_usage_views_for_bi_tools.py")
    spec = importlib.util.spec_from_file_location("usage_views_for_bi_tools", path)
    assert spec is not None and spec.loader is not None
    views = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(views)
    dialect = op.get_context().dialect.name
    for statement in views.POSTGRESQL if dialect == "postgresql" else views.SQLITE:
        op.execute(statement)
