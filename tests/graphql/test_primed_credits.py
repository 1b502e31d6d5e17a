"""Interaction.credits on a page's nodes: the credits the page fetched with it
(graphql-core's plain resolver, service/graphql/types/nodes.py primed_credits)
equal the ones strawberry's resolver loads for an interaction on its own, over
the page's range, over another range, and with a range that is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.app import GraphQLClient
from tests.fixtures.seed import INGEST, REGISTER

pytestmark = pytest.mark.asyncio

SUMMARY = "total stream transcript document records"
INSIDE = {"from": "2025-03-01T00:00:00Z", "to": "2025-03-02T00:00:00Z"}
# Ends mid-day, so the page's credits take raw records at a ragged end.
NARROW = {"from": "2025-03-01T00:00:00Z", "to": "2025-03-01T12:30:00Z"}

PAGE = f"""
query($range: TimeRange, $other: TimeRange) {{
  tenant(id: "t-primed") {{
    interactions(range: $range, first: 10) {{
      nodes {{
        id
        credits(range: $range) {{ {SUMMARY} }}
        open: credits {{ {SUMMARY} }}
        other: credits(range: $other) {{ {SUMMARY} }}
      }}
    }}
  }}
}}"""

ONE = f"""
query($id: ID!, $range: TimeRange) {{
  interaction(id: $id) {{ credits(range: $range) {{ {SUMMARY} }} }}
}}"""


async def _seed(gql: GraphQLClient) -> None:
    for interaction in ("i-primed-1", "i-primed-2"):
        await gql.data(
            REGISTER,
            {"i": interaction, "t": "t-primed", "u": "u-primed", "at": None},
        )
    records = [
        ("TRANSCRIPT", "i-primed-1", "x1", "1.25", "2025-03-01T08:00:00Z"),
        ("DOCUMENT", "i-primed-1", "x2", "0.5", "2025-03-01T13:00:00Z"),
        ("STREAM", "i-primed-1", "x3", "7", "2025-03-05T00:00:00Z"),
        ("STREAM", "i-primed-2", "x4", "2.125", "2025-03-01T12:00:00Z"),
        ("TRANSCRIPT", "i-primed-2", "x5", "3", "2025-02-28T23:59:59Z"),
    ]
    batch = [
        {"source": s, "interactionId": i, "externalId": x, "credits": c, "createdAt": t}
        for s, i, x, c, t in records
    ]
    result = await gql.data(INGEST, {"r": batch})
    assert result["ingestUsage"]["accepted"] == len(batch)


async def _alone(
    gql: GraphQLClient, interaction: str, window: dict[str, str] | None
) -> dict[str, Any]:
    data = await gql.data(ONE, {"id": interaction, "range": window})
    credits: dict[str, Any] = data["interaction"]["credits"]
    return credits


@pytest.mark.parametrize("window", [INSIDE, NARROW, None])
async def test_page_nodes_answer_as_the_interaction_alone(
    gql: GraphQLClient, window: dict[str, str] | None
) -> None:
    await _seed(gql)
    data = await gql.data(PAGE, {"range": window, "other": NARROW})
    nodes = data["tenant"]["interactions"]["nodes"]
    assert nodes, "the page lists the seeded interactions"
    for node in nodes:
        assert node["credits"] == await _alone(gql, node["id"], window)
        assert node["open"] == await _alone(gql, node["id"], None)
        assert node["other"] == await _alone(gql, node["id"], NARROW)


async def test_page_credits_are_the_records_inside_the_range(
    gql: GraphQLClient,
) -> None:
    await _seed(gql)
    data = await gql.data(PAGE, {"range": NARROW, "other": INSIDE})
    by_id = {n["id"]: n for n in data["tenant"]["interactions"]["nodes"]}
    assert by_id["i-primed-1"]["credits"] == {
        "total": "1.25",
        "stream": "0",
        "transcript": "1.25",
        "document": "0",
        "records": 1,
    }
    assert by_id["i-primed-1"]["other"]["total"] == "1.75"
    assert by_id["i-primed-1"]["open"]["total"] == "8.75"
    assert by_id["i-primed-2"]["credits"]["total"] == "2.125"
    assert by_id["i-primed-2"]["open"]["records"] == 2


async def test_a_refused_range_on_a_primed_node_is_a_coded_error(
    gql: GraphQLClient,
) -> None:
    await _seed(gql)
    backwards = {"from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"}
    body = await gql(PAGE, {"range": INSIDE, "other": backwards})
    errors = body["errors"]
    assert errors
    assert {e["extensions"]["code"] for e in errors} == {"BAD_USER_INPUT"}
    assert {tuple(e["path"][-1:]) for e in errors} == {("other",)}
    # The same refusal as strawberry's resolver gives an interaction alone.
    alone = await gql(ONE, {"id": "i-primed-1", "range": backwards})
    assert {e["message"] for e in errors} == {e["message"] for e in alone["errors"]}
    assert alone["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
