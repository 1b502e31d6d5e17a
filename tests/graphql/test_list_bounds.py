"""Every list of objects the cost model can reach has a real bound: a page
argument (`first`/`last`, with a default), the bucket count of `usage`, a
connection's page, or an entry in LIST_BOUNDS (issue 10 item 6)."""

from __future__ import annotations

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, get_named_type

from service.graphql.limits import LIST_BOUNDS
from service.graphql.schema import schema


def _is_list(graphql_type: object) -> bool:
    if isinstance(graphql_type, GraphQLNonNull):
        graphql_type = graphql_type.of_type
    return isinstance(graphql_type, GraphQLList)


def test_every_list_of_objects_is_bounded() -> None:
    unbounded = []
    checked = 0
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            if not _is_list(field.type):
                continue
            if not isinstance(get_named_type(field.type), GraphQLObjectType):
                continue  # lists of scalars are leaves: they cost nothing
            checked += 1
            paged = any(
                isinstance(field.args[arg].default_value, int)
                for arg in ("first", "last")
                if arg in field.args
            )
            connection = type_.name.endswith("Connection") and name in (
                "nodes",
                "edges",
            )
            buckets = name == "usage" and "range" in field.args
            if not (
                paged or connection or buckets or (type_.name, name) in LIST_BOUNDS
            ):
                unbounded.append(f"{type_.name}.{name}")
    assert checked > 5
    assert unbounded == []


def test_records_is_paged() -> None:
    interaction = schema._schema.type_map["Interaction"]
    assert isinstance(interaction, GraphQLObjectType)
    records = interaction.fields["records"]
    assert records.args["first"].default_value == 100
    assert "after" in records.args
