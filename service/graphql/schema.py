"""The schema; `schema.graphql` is generated from it (see tests/test_schema.py)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter
from strawberry.schema.config import StrawberryConfig

from service.graphql.budget_mutations import BudgetMutation, BudgetQuery
from service.graphql.budget_subscriptions import BudgetSubscription
from service.graphql.document_limits import (
    MAX_ALIASES,
    MAX_DEPTH,
    ValidateDocument,
)
from service.graphql.errors import ErrorCodes
from service.graphql.job_mutations import JobMutation
from service.graphql.limits import CostLimiter
from service.graphql.mutations import IngestionMutation
from service.graphql.queries import Query as UsageQuery
from service.graphql.scalars import SCALAR_MAP
from service.graphql.stateless_mutations import StatelessUsageMutation
from service.graphql.subscriptions import Subscription as UsageSubscription
from service.observability.graphql import OperationMetrics

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_TOKENS", "schema"]

MAX_TOKENS = 20_000


@strawberry.type(
    description="Reading usage: tenants, users, interactions, jobs and budgets."
)
class Query(UsageQuery, BudgetQuery):
    """The root query type."""


@strawberry.type(
    description="Writing usage: ingestion, Corti calls, budgets and webhooks."
)
class Mutation(IngestionMutation, StatelessUsageMutation, JobMutation, BudgetMutation):
    """The root mutation type."""


@strawberry.type(
    description=(
        "Live updates over WebSocket (graphql-transport-ws). Send the key in the "
        'connection_init payload: {"Authorization": "Bearer <key>"}.'
    )
)
class Subscription(UsageSubscription, BudgetSubscription):
    """The root subscription type."""


class Schema(strawberry.Schema):
    """strawberry's Schema, minus its own error logging (ErrorCodes logs instead)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: Any = None
    ) -> None:
        """Logged by ErrorCodes, which knows which errors are unexpected."""


schema = Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=True),
    extensions=[
        OperationMetrics,
        ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        # Parsing, then depth, aliases, fields, nesting and graphql-core's
        # rules, cached, with rules fixed at import (document_limits.py).
        ValidateDocument,
        CostLimiter,
    ],
)
