"""GraphQL object types, by idea:

- inputs.py: TimeRange and the argument annotations the nodes share
- credits.py: CreditSummary and UsageBucket
- connections.py: the generic Relay `Connection[T]`, `Edge[T]` and `PageInfo`
- nodes.py: Tenant, User, Interaction, UsageRecord and their connections
- results.py: mutation results (IngestResult)
"""

from service.graphql.types.connections import Connection, Edge, PageInfo
from service.graphql.types.credits import CreditSummary, UsageBucket
from service.graphql.types.inputs import (
    AfterArg,
    BucketRangeArg,
    FirstArg,
    GranularityArg,
    InputArg,
    RangeArg,
    TimeRange,
    ZoneArg,
    window_of,
)
from service.graphql.types.nodes import (
    Interaction,
    InteractionConnection,
    Tenant,
    TenantConnection,
    UsageRecord,
    User,
    UserConnection,
)
from service.graphql.types.results import IngestResult

__all__ = [
    "AfterArg",
    "BucketRangeArg",
    "Connection",
    "CreditSummary",
    "Edge",
    "FirstArg",
    "GranularityArg",
    "IngestResult",
    "InputArg",
    "Interaction",
    "InteractionConnection",
    "PageInfo",
    "RangeArg",
    "Tenant",
    "TenantConnection",
    "TimeRange",
    "UsageBucket",
    "UsageRecord",
    "User",
    "UserConnection",
    "ZoneArg",
    "window_of",
]
