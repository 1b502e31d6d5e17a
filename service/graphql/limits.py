"""Static query cost: how many objects an operation may return, checked before it runs.

Every object or list field costs one node per possible parent; a list field
multiplies its children by its page size (`first` or `last`, default the
field's own), the bucket count of a `usage` field, or the most an unpaged list
can hold (LIST_BOUNDS). This is
GitHub's node-limit model. Introspection counts too, its lists multiplied by
the longest list of this schema (a type's fields, a field's arguments...), so
`fields { type { fields { type ... } } }` cannot amplify where depth does not
look. The cost depends on the variables (`first: $n`), so it is computed for
every request, in time linear in the document: each fragment is costed once
per parent type. The limit and each request's cost are reported in the
response's `extensions.cost`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    get_named_type,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from service.budgets.periods import Period
from service.budgets.service import MAX_THRESHOLDS
from service.db.timebuckets import edges, zone
from service.graphql.args import MAX_BUCKETS, MAX_PAGE
from service.graphql.document_limits import MAX_NESTING
from service.graphql.scalars import parse_datetime

MAX_COST = 1_000_000
# Usage records one request may carry across all its mutation fields (the
# per-call cap of ingestUsage, so aliases cannot multiply it).
MAX_RECORDS_PER_REQUEST = 10_000
DEFAULT_PAGE = 50
# Lists without a page argument, costed by the most they can return. A list
# that is neither paged nor listed here fails tests/graphql/test_list_bounds.py
# (at run time it would be costed as one page, MAX_PAGE).
LIST_BOUNDS: dict[tuple[str, str], int] = {
    # ingestUsage already multiplies its result by the records it was given
    # (at most MAX_RECORDS_PER_REQUEST), one per element of this list.
    ("IngestResult", "records"): 1,
    ("BudgetStatus", "alerts"): MAX_THRESHOLDS,
    ("User", "budgets"): len(Period),  # one per period
    # A tenant's own budgets and its users': only admin keys create budgets,
    # so the count is the operator's; costed as a page of users with one per
    # period each.
    ("Tenant", "budgets"): len(Period) * (MAX_PAGE + 1),
}


def _is_list(graphql_type: Any) -> bool:
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    return isinstance(graphql_type, GraphQLList)


def _introspection_bounds(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """The longest list each introspection list field can return in this schema."""
    types = list(schema.type_map.values())
    fields = [
        t.fields
        for t in types
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)
    ]
    arguments = [len(f.args) for group in fields for f in group.values()]
    arguments += [len(d.args) for d in schema.directives]
    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(schema.directives),
        ("__Type", "fields"): max(map(len, fields), default=0),
        ("__Type", "interfaces"): max(
            (len(t.interfaces) for t in types if hasattr(t, "interfaces")), default=0
        ),
        ("__Type", "possibleTypes"): max(
            (
                len(schema.get_possible_types(t))
                for t in types
                if isinstance(t, GraphQLInterfaceType | GraphQLUnionType)
            ),
            default=0,
        ),
        ("__Type", "enumValues"): max(
            (len(t.values) for t in types if isinstance(t, GraphQLEnumType)),
            default=0,
        ),
        ("__Type", "inputFields"): max(
            (len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType)),
            default=0,
        ),
        ("__Field", "args"): max(arguments, default=0),
        ("__Directive", "args"): max(arguments, default=0),
    }


_BOUNDS: dict[int, dict[tuple[str, str], int]] = {}


class _Cost:
    """The cost of one operation; each fragment costed once per parent type.

    Cost is linear in the factor its parent multiplies it by, so a fragment's
    cost at factor 1 is memoised and multiplied at every spread.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.memo: dict[tuple[str, str], int] = {}
        bounds = _BOUNDS.get(id(schema))
        if bounds is None:
            bounds = _BOUNDS[id(schema)] = _introspection_bounds(schema)
        self.bounds = bounds

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
        if parent.name.startswith("__"):
            return self.bounds.get((parent.name, name), 1)
        if name in ("nodes", "edges") and parent.name.endswith("Connection"):
            return 1  # already multiplied by the connection field's `first`
        if name == "usage" and "range" in args:
            return self._buckets(args)
        if name == "ingestUsage":
            records = args.get("records")
            return len(records) if isinstance(records, list) else 1
        for size in ("first", "last"):
            if size in field.args:
                default = field.args[size].default_value
                if not isinstance(default, int):
                    default = DEFAULT_PAGE
                value = args.get(size, default)
                # Out-of-range values are refused when the field resolves.
                return max(value, 0) if isinstance(value, int) else default
        if _is_list(field.type):
            return LIST_BOUNDS.get((parent.name, name), MAX_PAGE)
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

    def _field(self, parent: GraphQLObjectType, name: str) -> GraphQLField | None:
        meta: dict[str, GraphQLField] = {
            "__schema": SchemaMetaFieldDef,
            "__type": TypeMetaFieldDef,
        }
        return meta.get(name) or parent.fields.get(name)

    def _target(self, condition: str | None, parent: GraphQLObjectType) -> Any:
        if condition is None:
            return parent
        named = self.schema.get_type(condition)
        return named if isinstance(named, GraphQLObjectType) else parent

    def of(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLObjectType,
        level: int = 0,
    ) -> int:
        """The cost of a selection set under one parent object (factor 1)."""
        if selection_set is None:
            return 0
        if level > MAX_NESTING:  # refused by validation; never recurse without end
            return MAX_COST + 1
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                field = self._field(parent, selection.name.value)
                if field is None:
                    continue
                named = get_named_type(field.type)
                if not isinstance(named, GraphQLObjectType):
                    continue
                count = self._multiplier(
                    selection, field, parent, self._args(selection)
                )
                total += count * (
                    1 + self.of(selection.selection_set, named, level + 1)
                )
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self._target(
                    condition.name.value if condition else None, parent
                )
                total += self.of(selection.selection_set, target, level + 1)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, parent, level + 1)
        return total

    def records(self, selection_set: SelectionSetNode | None, level: int = 0) -> int:
        """Records carried by the `ingestUsage` fields of a mutation's root."""
        if selection_set is None:
            return 0
        if level > MAX_NESTING:  # refused by validation; never recurse without end
            return MAX_RECORDS_PER_REQUEST + 1
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value == "ingestUsage":
                    records = self._args(selection).get("records")
                    total += len(records) if isinstance(records, list) else 1
            elif isinstance(selection, InlineFragmentNode):
                total += self.records(selection.selection_set, level + 1)
            elif isinstance(selection, FragmentSpreadNode):
                key = (selection.name.value, "records")
                if key not in self.memo:
                    self.memo[key] = 0
                    fragment = self.fragments.get(selection.name.value)
                    if fragment is not None:
                        self.memo[key] = self.records(fragment.selection_set, level + 1)
                total += self.memo[key]
        return total

    def _spread(self, name: str, parent: GraphQLObjectType, level: int) -> int:
        fragment = self.fragments.get(name)
        if fragment is None:
            return 0
        target = self._target(fragment.type_condition.name.value, parent)
        key = (name, target.name)
        if key not in self.memo:
            self.memo[key] = 0  # a cycle (refused by validation) counts nothing
            self.memo[key] = self.of(fragment.selection_set, target, level)
        return self.memo[key]


def _values(
    operation: OperationDefinitionNode, variables: dict[str, Any]
) -> dict[str, Any]:
    # A variable left out takes its default (`$first: Int = 100`), not the field's.
    values = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    values.update(variables)
    return values


def operation_records(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    """The usage records all of a mutation's fields carry, aliases and
    fragments included (one variable reused by 30 aliases is 30 times its
    length)."""
    if operation.operation.value != "mutation" or schema.mutation_type is None:
        return 0
    cost = _Cost(schema, fragments, _values(operation, variables))
    return cost.records(operation.selection_set)


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
    values = _values(operation, variables)
    return _Cost(schema, fragments, values).of(operation.selection_set, root)


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
                records = operation_records(
                    context.schema._schema,
                    chosen[0],
                    fragments,
                    context.variables or {},
                )
                error = None
                if self.cost > MAX_COST:
                    error = GraphQLError(
                        f"query cost {self.cost} exceeds the limit of {MAX_COST}; "
                        "ask for smaller pages (first) or fewer buckets",
                        extensions={"code": "BAD_USER_INPUT"},
                    )
                elif records > MAX_RECORDS_PER_REQUEST:
                    error = GraphQLError(
                        f"records: {records} usage records in one request; at most "
                        f"{MAX_RECORDS_PER_REQUEST} across all its mutation fields",
                        extensions={"code": "BAD_USER_INPUT", "field": "records"},
                    )
                if error is not None:
                    context.result = ExecutionResult(data=None, errors=[error])
        yield

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requested": self.cost, "limit": MAX_COST}}
