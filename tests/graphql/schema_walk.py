"""Queries that reach every object field of the schema from Query, built by introspection.

For each object type reachable from Query, one operation follows the
shallowest path to it and selects every field of the type: scalars as they
are, object fields as `{ __typename id }`. Required arguments are filled by
type (ids from the seeded data, found by walking), so fields added later
(budgets, webhooks, ...) are walked without anyone listing them here.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
    get_named_type,
)

# A range that needs few buckets of the widest granularity; DateTime inputs
# named `from`/`to` take its ends, any other the instant in between.
FROM, TO, AT = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025-03-10T12:00:00Z"


@dataclass(frozen=True)
class Step:
    """One field of a path from Query: its name and its (type, field) origin."""

    parent: str
    name: str


@dataclass
class Walk:
    """The schema's reachable object types and the ids seen for each type."""

    schema: GraphQLSchema
    ids: dict[str, list[str]] = field(default_factory=dict)
    _round: int = 0

    def paths(self) -> dict[str, list[Step]]:
        """The shallowest path from Query to every reachable object type."""
        query = self.schema.query_type
        assert query is not None
        found: dict[str, list[Step]] = {query.name: []}
        queue = deque([query])
        while queue:
            parent = queue.popleft()
            for name, definition in parent.fields.items():
                named = get_named_type(definition.type)
                if isinstance(named, GraphQLObjectType) and named.name not in found:
                    found[named.name] = [*found[parent.name], Step(parent.name, name)]
                    queue.append(named)
        return found

    def fields(self) -> set[str]:
        """Every `Type.field` of every reachable object type."""
        return {
            f"{name}.{field_name}"
            for name in self.paths()
            for field_name in self._object(name).fields
        }

    def _object(self, name: str) -> GraphQLObjectType:
        named = self.schema.get_type(name)
        assert isinstance(named, GraphQLObjectType)
        return named

    def operations(self) -> list[tuple[str, str]]:
        """Queries per reachable type: its path, then all of its fields.

        A type is queried once per id seen (of the type that has the most),
        the n-th query taking the n-th id of each type (cycling), so every
        seeded object is reached by id.
        """
        rounds = max([len(ids) for ids in self.ids.values()] + [1])
        found = []
        for self._round in range(rounds):
            for name, steps in self.paths().items():
                found.append((name, self._operation(steps, name)))
        self._round = 0
        return list(dict.fromkeys(found))

    def _operation(self, steps: list[Step], target: str) -> str:
        selection = self._all_fields(self._object(target))
        for step in reversed(steps):
            definition = self._object(step.parent).fields[step.name]
            selection = (
                f"{step.name}{self._args(definition)} {{ __typename {selection} }}"
            )
        return "{ " + selection + " }"

    def _all_fields(self, owner: GraphQLObjectType) -> str:
        parts = ["__typename"]
        for name, definition in owner.fields.items():
            named = get_named_type(definition.type)
            args = self._args(definition)
            if isinstance(named, GraphQLObjectType):
                inner = "__typename id" if "id" in named.fields else "__typename"
                parts.append(f"{name}{args} {{ {inner} }}")
            else:
                parts.append(f"{name}{args}")
        return " ".join(parts)

    def _args(self, definition: GraphQLField) -> str:
        returned = get_named_type(definition.type).name
        values = {
            name: self._value(name, argument.type, returned)
            for name, argument in definition.args.items()
            if _required(argument)
        }
        if not values:
            return ""
        return "(" + ", ".join(f"{k}: {v}" for k, v in values.items()) + ")"

    def _value(self, name: str, kind: GraphQLInputType, returned: str) -> str:
        named = get_named_type(kind)
        if isinstance(named, GraphQLEnumType):
            widest: str = list(named.values)[-1]  # MONTH for Granularity
            return widest
        if isinstance(named, GraphQLInputObjectType):
            inner = ", ".join(
                f"{key}: {self._value(key, item.type, returned)}"
                for key, item in named.fields.items()
            )
            return "{" + inner + "}"
        assert isinstance(named, GraphQLScalarType)
        text: object
        if named.name == "ID":
            seen = self.ids.get(returned) or [str(uuid.uuid4())]
            text = seen[self._round % len(seen)]
        elif named.name == "DateTime":
            text = {"from": FROM, "to": TO}.get(name, AT)
        elif named.name == "Int":
            return "1"
        elif named.name == "Boolean":
            return "false"
        elif named.name == "Decimal":
            text = "1"
        else:
            text = "UTC" if name == "timeZone" else "x"
        return json.dumps(text)

    def learn(self, data: Any) -> None:
        """Remember the id of every typed object in a response."""
        if isinstance(data, list):
            for item in data:
                self.learn(item)
        elif isinstance(data, dict):
            kind, found = data.get("__typename"), data.get("id")
            if isinstance(kind, str) and isinstance(found, str):
                seen = self.ids.setdefault(kind, [])
                if found not in seen:
                    seen.append(found)
            for value in data.values():
                self.learn(value)


def _required(argument: GraphQLArgument) -> bool:
    return (
        isinstance(argument.type, GraphQLNonNull)
        and argument.default_value is Undefined
    )


def reached(data: Any, path: list[Step]) -> bool:
    """Whether a response got to a (non-null) object at the end of the path."""
    values = [data]
    for step in path:
        following: list[Any] = []
        for value in values:
            inner = value.get(step.name) if isinstance(value, dict) else None
            following += inner if isinstance(inner, list) else [inner]
        values = [v for v in following if v is not None]
    return bool(values)
