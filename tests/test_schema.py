"""schema.graphql is generated from the code and must not drift."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType
from strawberry.printer import print_schema

from service.graphql.schema import schema

SDL = Path(__file__).resolve().parent.parent / "schema.graphql"
REGENERATE = "run: strawberry export-schema service.graphql.schema:schema --output schema.graphql"


def test_schema_graphql_is_current() -> None:
    assert print_schema(schema) + "\n" == SDL.read_text(), REGENERATE


def test_every_type_and_field_is_described() -> None:
    missing: list[str] = []
    for name, graphql_type in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Boolean", "ID", "Float"}:
            continue
        if not getattr(graphql_type, "description", None):
            missing.append(name)
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInputObjectType):
            missing += [
                f"{name}.{field}"
                for field, definition in graphql_type.fields.items()
                if not definition.description
            ]
        if isinstance(graphql_type, GraphQLObjectType):
            missing += [
                f"{name}.{field}({arg})"
                for field, definition in graphql_type.fields.items()
                for arg, argument in definition.args.items()
                if not argument.description and arg != "input"
            ]
        if isinstance(graphql_type, GraphQLEnumType):
            missing += [
                f"{name}.{value}"
                for value, definition in graphql_type.values.items()
                if not definition.description
            ]
    assert not missing, f"undocumented: {missing}"


def test_contract_names_are_present() -> None:
    sdl = SDL.read_text()
    for name in (
        "scalar DateTime",
        "scalar Decimal",
        "enum UsageSource",
        "enum Granularity",
        "input TimeRange",
        "type CreditSummary",
        "type UsageBucket",
        "enum UserOrder",
        "type PageInfo",
        "type TenantConnection",
        "type UserConnection",
        "type InteractionConnection",
        "type IngestResult",
        "input UsageRecordInput",
        "enum JobStatus",
        "type Job",
    ):
        assert name in sdl, name
