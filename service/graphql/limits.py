"""Static query cost: how many objects an operation may return, checked before it runs.

Every object or list field costs one node per possible parent; a list field
multiplies its children by its page size (`first`, default 50), the bucket
count of a `usage` field, or a fixed estimate for unpaginated lists. This is
GitHub's node-limit model. The limit and each request's cost are reported in
the response's `extensions.cost`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from service.db.timebuckets import edges, zone
from service.graphql.args import MAX_BUCKETS
from service.graphql.scalars import parse_datetime

MAX_COST = 1_000_000
DEFAULT_PAGE = 50
UNPAGINATED_LIST = 4  # Interaction.records: a stream, a transcript, a document or two


def _is_list(graphql_type: Any) -> bool:
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    return isinstance(graphql_type, GraphQLList)


class _Cost:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def _args(self, node: FieldNode) -> dict[str, Any]:
        return {
            arg.name.value: value_from_ast_untyped(arg.value, self.variables)
            for arg in node.arguments or ()
        }

    def _multiplier(
        self,
        node: FieldNode,
        field: GraphQLField,
        parent: GraphQLObjectType,
        args: dict[str, Any],
    ) -> int:
        name = node.name.value
        if name in ("nodes", "edges") and parent.name.endswith("Connection"):
            return 1  # already multiplied by the connection field's `first`
        if name == "usage" and "range" in args:
            return self._buckets(args)
        if name == "ingestUsage":
            records = args.get("records")
            return len(records) if isinstance(records, list) else 1
        if "first" in field.args:
            first = args.get("first", DEFAULT_PAGE)
            return max(first, 0) if isinstance(first, int) else DEFAULT_PAGE
        if _is_list(field.type):
            return UNPAGINATED_LIST
        return 1

    def _buckets(self, args: dict[str, Any]) -> int:
        try:
            window = args["range"] or {}
            unit = str(args.get("granularity", "DAY")).lower()
            start = parse_datetime(window["from"])
            end = parse_datetime(window["to"])
            return len(
                edges(start, end, unit, zone(args.get("timeZone", "UTC")), MAX_BUCKETS)
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            return MAX_BUCKETS  # invalid ones are refused later with a precise message

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLObjectType
    ) -> Iterator[tuple[FieldNode, GraphQLObjectType]]:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                target = parent
                if selection.type_condition is not None:
                    named = self.schema.get_type(selection.type_condition.name.value)
                    target = named if isinstance(named, GraphQLObjectType) else parent
                yield from self.selections(selection.selection_set, target)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    named = self.schema.get_type(fragment.type_condition.name.value)
                    target = named if isinstance(named, GraphQLObjectType) else parent
                    yield from self.selections(fragment.selection_set, target)

    def of(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLObjectType,
        factor: int,
    ) -> int:
        total = 0
        for node, owner in self.selections(selection_set, parent):
            if node.name.value.startswith("__"):
                continue
            field = owner.fields.get(node.name.value)
            if field is None:
                continue
            named = get_named_type(field.type)
            if not isinstance(named, GraphQLObjectType):
                continue
            count = factor * self._multiplier(node, field, owner, self._args(node))
            total += count + self.of(node.selection_set, named, count)
        return total


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    """The number of objects the operation may return."""
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[operation.operation.value]
    if root is None:
        return 0
    # A variable left out takes its default (`$first: Int = 100`), not the field's.
    values = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    values.update(variables)
    return _Cost(schema, fragments, values).of(operation.selection_set, root, 1)


class CostLimiter(SchemaExtension):
    """Refuses operations whose static cost exceeds MAX_COST, before they run."""

    cost: int | None = None

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            operations = [
                d
                for d in document.definitions
                if isinstance(d, OperationDefinitionNode)
            ]
            chosen = [
                op
                for op in operations
                if context.operation_name is None
                or (op.name is not None and op.name.value == context.operation_name)
            ]
            if chosen:
                self.cost = operation_cost(
                    context.schema._schema,
                    chosen[0],
                    fragments,
                    context.variables or {},
                )
                if self.cost > MAX_COST:
                    context.result = ExecutionResult(
                        data=None,
                        errors=[
                            GraphQLError(
                                f"query cost {self.cost} exceeds the limit of {MAX_COST}; "
                                "ask for smaller pages (first) or fewer buckets",
                                extensions={"code": "BAD_USER_INPUT"},
                            )
                        ],
                    )
        yield

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requested": self.cost, "limit": MAX_COST}}
