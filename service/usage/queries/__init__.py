"""Read-side SQL: every function answers for many owners in one statement.

These back the read services (service/usage/reads.py), so a nested selection
costs one statement per level whatever the number of rows. Owners are tenants
(`tenant_id`), users (`(tenant_id, user_id)`) or interactions
(`interaction_id`). The modules, by idea:

- models.py: the read models (TimeWindow, Summary, Bucket, Page, ...)
- _sql.py: SQL helpers shared by the others (owner columns, IN-lists)
- windows.py: a window cut into whole rollup hours/days and ragged ends
- totals.py: credit totals and time buckets
- lookups.py: tenants, users, interactions and records by id
- users.py: pages of a tenant's users
- interactions.py: pages of a tenant's or user's interactions, and counts
"""

from service.usage.queries.interactions import interaction_counts, interactions_pages
from service.usage.queries.lookups import (
    existing_tenants,
    existing_users,
    interactions_by_id,
    records_of,
    tenants_page,
)
from service.usage.queries.models import (
    ZERO,
    Bucket,
    InteractionRow,
    Owner,
    Page,
    Summary,
    TimeWindow,
    UserOrder,
)
from service.usage.queries.totals import credit_summaries, usage_buckets
from service.usage.queries.users import users_pages
from service.usage.queries.windows import Split, split

__all__ = [
    "ZERO",
    "Bucket",
    "InteractionRow",
    "Owner",
    "Page",
    "Split",
    "Summary",
    "TimeWindow",
    "UserOrder",
    "credit_summaries",
    "existing_tenants",
    "existing_users",
    "interaction_counts",
    "interactions_by_id",
    "interactions_pages",
    "records_of",
    "split",
    "tenants_page",
    "usage_buckets",
    "users_pages",
]
