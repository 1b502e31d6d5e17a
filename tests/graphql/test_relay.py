"""The Relay connection spec: edges { cursor node }, pageInfo's four fields.

Relay, Apollo Client's relayStylePagination and urql's relayPagination read
`edges`, `pageInfo.endCursor`/`hasNextPage` (forward) and
`startCursor`/`hasPreviousPage`; each must agree with `nodes`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.app import GraphQLClient
from tests.fixtures.seed import INGEST, REGISTER

pytestmark = pytest.mark.asyncio

PAGE = (
    "totalCount nodes { id } edges { cursor node { id } } pageInfo {"
    " hasNextPage hasPreviousPage startCursor endCursor }"
)
CONNECTIONS = {
    "tenants": f"query($f: Int, $a: String) {{ tenants(first: $f, after: $a) {{ {PAGE} }} }}",
    "users": (
        'query($f: Int, $a: String) { tenant(id: "t1") {'
        f" users(first: $f, after: $a, orderBy: ID_ASC) {{ {PAGE} }} }} }}"
    ),
    "interactions": (
        'query($f: Int, $a: String) { tenant(id: "t1") {'
        ' interactions(first: $f, after: $a, range: {from: "2025-01-01T00:00:00Z"})'
        f" {{ {PAGE} }} }} }}"
    ),
    "user interactions": (
        'query($f: Int, $a: String) { tenant(id: "t1") { user(id: "u1") {'
        f" interactions(first: $f, after: $a) {{ {PAGE} }} }} }} }}"
    ),
}


async def seed(gql: GraphQLClient) -> None:
    for n in range(5):
        await gql.data(
            REGISTER, {"i": f"i{n}", "t": f"t{n % 3 + 1}", "u": "u1", "at": None}
        )
        await gql.data(REGISTER, {"i": f"j{n}", "t": "t1", "u": f"u{n}", "at": None})
    records = [
        {
            "source": "STREAM",
            "interactionId": f"j{n}",
            "externalId": f"s{n}",
            "credits": "1",
            "createdAt": f"2025-02-0{n + 1}T00:00:00Z",
        }
        for n in range(5)
    ]
    await gql.data(INGEST, {"r": records})


def connection(data: dict[str, Any]) -> dict[str, Any]:
    while "pageInfo" not in data:
        (data,) = data.values()
    return data


@pytest.mark.parametrize("name", list(CONNECTIONS))
async def test_paging_through_edges_equals_nodes(gql: GraphQLClient, name: str) -> None:
    await seed(gql)
    query = CONNECTIONS[name]
    everything = connection(await gql.data(query, {"f": 100}))
    assert len(everything["nodes"]) >= 3
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = connection(await gql.data(query, {"f": 2, "a": after}))
        info = page["pageInfo"]
        assert [e["node"] for e in page["edges"]] == page["nodes"]
        assert page["totalCount"] == everything["totalCount"]
        assert info["hasPreviousPage"] is (after is not None)
        if page["edges"]:
            assert info["startCursor"] == page["edges"][0]["cursor"]
            assert info["endCursor"] == page["edges"][-1]["cursor"]
        # Each edge's cursor resumes right after its node.
        for index, edge in enumerate(page["edges"][:-1]):
            rest = connection(await gql.data(query, {"f": 1, "a": edge["cursor"]}))
            assert rest["nodes"] == [page["nodes"][index + 1]]
        seen += [n["id"] for n in page["nodes"]]
        pages += 1
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
        assert pages < 20
    assert seen == [n["id"] for n in everything["nodes"]]


async def test_an_empty_page_has_no_cursors(gql: GraphQLClient) -> None:
    await seed(gql)
    page = connection(await gql.data(CONNECTIONS["tenants"], {"f": 0}))
    assert page["edges"] == []
    assert page["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_edges_cost_like_nodes_and_their_edge_objects(gql: GraphQLClient) -> None:
    """edges is not a fourth list below the page: it counts once per node."""
    nodes = await gql("{ tenants(first: 10) { nodes { id } } }")
    edges = await gql("{ tenants(first: 10) { edges { node { id } } } }")
    assert nodes["extensions"]["cost"]["requested"] == 20
    assert edges["extensions"]["cost"]["requested"] == 30
