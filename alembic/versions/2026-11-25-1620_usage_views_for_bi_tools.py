"""usage views for BI tools

Two read-only views for BI tools that connect to the database itself:

- `usage_records_v`: one row per usage record, with the tenant and user it is
  attributed to (both NULL while its interaction is not registered).
- `daily_usage_v`: per UTC day, tenant, user and source: credits and records.
  Days are UTC days, since SQLite has no time zones; for days in another zone
  use `GET /export/daily.csv?timeZone=...` or group `usage_records_v` yourself.

PostgreSQL: credits are NUMERIC, times are timestamptz. SQLite: credits are
exact decimal TEXT with 9 decimals ("0.100000000", summed with integer
arithmetic, so the views work in any SQLite client, without the service's own
`credit_sum` function), and times are UTC text without an offset.

Views are not tables, so autogenerate (`alembic check`) ignores them. A later
migration that rebuilds `usage_records` or `interactions` on SQLite (batch
mode: copy, drop, rename) must drop these views first and create them again
afterwards: SQLite refuses to rename a table while a view names a missing one.

Revision ID: 009a452b7e04
Revises: d51c55e222e3
Create Date: 2026-11-25 16:20:28.678781
"""

from collections.abc import Sequence

from alembic import op

revision: str = "009a452b7e04"
down_revision: str | Sequence[str] | None = "d51c55e222e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL = (
    """
    CREATE VIEW usage_records_v AS
    SELECT r.id, r.source, r.external_id, r.interaction_id,
           i.tenant_id, i.user_id, r.credits, r.created_at, r.received_at
    FROM usage_records AS r
    LEFT JOIN interactions AS i ON i.id = r.interaction_id
    """,
    """
    CREATE VIEW daily_usage_v AS
    SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day,
           i.tenant_id, i.user_id, r.source,
           sum(r.credits) AS credits, count(*) AS records
    FROM usage_records AS r
    LEFT JOIN interactions AS i ON i.id = r.interaction_id
    GROUP BY 1, 2, 3, 4
    """,
)

# Credits are stored as zero-padded text ("0000...0000.100000000"): split at the
# point and sum the whole and the fractional parts as integers, so the sum is
# exact without a user-defined aggregate.
_WHOLE = "CAST(substr(r.credits, 1, instr(r.credits, '.') - 1) AS INTEGER)"
_FRACTION = "CAST(substr(r.credits, instr(r.credits, '.') + 1) AS INTEGER)"
SQLITE = (
    f"""
    CREATE VIEW usage_records_v AS
    SELECT r.id, r.source, r.external_id, r.interaction_id,
           i.tenant_id, i.user_id,
           CAST({_WHOLE} AS TEXT) || substr(r.credits, instr(r.credits, '.'))
             AS credits,
           r.created_at, r.received_at
    FROM usage_records AS r
    LEFT JOIN interactions AS i ON i.id = r.interaction_id
    """,
    f"""
    CREATE VIEW daily_usage_v AS
    SELECT day, tenant_id, user_id, source,
           CAST(whole + fraction / 1000000000 AS TEXT) || '.'
             || substr('000000000' || (fraction % 1000000000), -9, 9) AS credits,
           records
    FROM (
        SELECT date(r.created_at) AS day, i.tenant_id, i.user_id, r.source,
               sum({_WHOLE}) AS whole, sum({_FRACTION}) AS fraction,
               count(*) AS records
        FROM usage_records AS r
        LEFT JOIN interactions AS i ON i.id = r.interaction_id
        GROUP BY 1, 2, 3, 4
    ) AS per_day
    """,
)


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS daily_usage_v")
    op.execute("DROP VIEW IF EXISTS usage_records_v")
