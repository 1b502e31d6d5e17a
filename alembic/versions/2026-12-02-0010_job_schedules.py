"""job_schedules: the last due time enqueued per scheduled job

Revision ID: 7c2f0a9d4e51
Revises: edd67e2bc042
Create Date: 2026-12-02 00:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.types

revision: str = "7c2f0a9d4e51"
down_revision: str | Sequence[str] | None = "edd67e2bc042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_schedules",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column(
            "last_due_at", service.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_schedules")),
    )


def downgrade() -> None:
    op.drop_table("job_schedules")
