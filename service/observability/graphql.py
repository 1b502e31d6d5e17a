"""One measurement (and, with tracing on, one span) per GraphQL operation.

Only the operation hook: strawberry's per-field hooks (its own tracing
extensions) run for every resolved field and multiply a dashboard request's
time several-fold.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from service.observability import tracing
from service.observability.metrics import GRAPHQL_DURATION, GRAPHQL_OPERATIONS

TYPES = frozenset({"query", "mutation", "subscription"})


class OperationMetrics(SchemaExtension):
    """Counts each operation by type and outcome and observes its duration."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        with tracing.operation_span("operation", None) as span:
            try:
                yield
            finally:
                kind = self._observe(time.perf_counter() - started)
                if span is not None:
                    name = self.execution_context.operation_name
                    span.update_name(
                        f"graphql.{kind} {name}" if name else f"graphql.{kind}"
                    )
                    span.set_attribute("graphql.operation.type", kind)
                    span.set_attribute("graphql.operation.name", name or "")

    def _observe(self, seconds: float) -> str:
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # noqa: BLE001 - no parsable operation: counted as a query
            kind = "query"
        if kind not in TYPES:
            kind = "query"
        result = context.result
        failed = bool(context.pre_execution_errors) or bool(
            getattr(result, "errors", None)
        )
        GRAPHQL_OPERATIONS.labels(type=kind, outcome="error" if failed else "ok").inc()
        GRAPHQL_DURATION.labels(type=kind).observe(seconds)
        return kind
