"""job audio chunks and lease index

Uploaded audio of requestTranscript / requestStream jobs is kept in the
database, in rows of about 1 MiB (`job_audio_chunks`), from the mutation that
stores the job until the job ends; `jobs.audio_bytes` is its size. The index on
(status, lease_expires_at) lets workers find jobs whose lease ran out, and the
one on interaction_id sums an interaction's pending audio.

Revision ID: 122909b72243
Revises: 009a452b7e04
Create Date: 2026-11-25 16:26:29.572082
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "122909b72243"
down_revision: str | Sequence[str] | None = "009a452b7e04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_audio_chunks",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_audio_chunks_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_job_audio_chunks")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audio_bytes", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_jobs_interaction", ["interaction_id"], unique=False)
        batch_op.create_index(
            "ix_jobs_status_lease_expires",
            ["status", "lease_expires_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_lease_expires")
        batch_op.drop_index("ix_jobs_interaction")
        batch_op.drop_column("audio_bytes")
    op.drop_table("job_audio_chunks")
