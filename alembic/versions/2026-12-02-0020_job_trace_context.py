"""jobs.trace_context: the W3C trace context of the request that enqueued a job

Revision ID: 7a1c0e5d2f10
Revises: 7c2f0a9d4e51
Create Date: 2026-12-01 23:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a1c0e5d2f10"
down_revision: str | Sequence[str] | None = "7c2f0a9d4e51"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("trace_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("trace_context")
