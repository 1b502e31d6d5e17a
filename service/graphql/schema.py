"""The schema; `schema.graphql` is generated from it (see tests/test_schema.py)."""

from __future__ import annotations

from typing import Any, cast

import strawberry
from graphql import GraphQLError, GraphQLObjectType
from strawberry.extensions import MaxTokensLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

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
from service.graphql.types.nodes import primed_credits
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


class Executor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor; each subscription event with a memo of its own.

    graphql-core 3.3.2 runs every event of a subscription on a shallow copy of
    the subscription's executor, so all of them share one sub-field memo keyed
    by the identity of field lists that each event builds anew, and the memo
    keeps those lists alive: about 1 KB per event delivered, for as long as the
    subscription stays open (`python -m bench.soak`: the API processes grew
    7 MB a minute at 70 events a second). A fresh memo per event ends that.
    """

    def build_per_event_executor(self, payload: Any) -> Executor:
        """A copy for one event, sharing nothing it memoizes with the others."""
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return cast(Executor, executor)


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
    execution_context_class=Executor,
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


def _install_plain_resolvers(built: Schema) -> None:
    """Resolvers that graphql-core calls without strawberry's wrapper, where a
    field is resolved hundreds of times per request (see primed_credits)."""
    interaction = built._schema.get_type("Interaction")
    assert isinstance(interaction, GraphQLObjectType)
    field = interaction.fields["credits"]
    assert field.resolve is not None
    field.resolve = primed_credits(field.resolve)


_install_plain_resolvers(schema)
