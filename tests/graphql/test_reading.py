"""Reading over HTTP: nested credits, ranges, ordering, pagination, lookups."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fixtures.app import GraphQLClient
from tests.fixtures.seed import INGEST, REGISTER

pytestmark = pytest.mark.asyncio

SUMMARY = "total stream transcript document records"
ZERO = {"total": "0", "stream": "0", "transcript": "0", "document": "0", "records": 0}


async def register(
    gql: GraphQLClient, interaction: str, tenant: str, user: str, at: str | None = None
) -> None:
    await gql.data(REGISTER, {"i": interaction, "t": tenant, "u": user, "at": at})


async def ingest(gql: GraphQLClient, *records: tuple[str, str, str, str, str]) -> None:
    """Records as (source, interactionId, externalId, credits, createdAt)."""
    batch = [
        {
            "source": s,
            "interactionId": i,
            "externalId": x,
            "credits": c,
            "createdAt": at,
        }
        for s, i, x, c, at in records
    ]
    result = await gql.data(INGEST, {"r": batch})
    assert result["ingestUsage"]["accepted"] == len(batch)


def summary(
    total: str,
    *,
    stream: str = "0",
    transcript: str = "0",
    document: str = "0",
    records: int,
) -> dict[str, Any]:
    return {
        "total": total,
        "stream": stream,
        "transcript": transcript,
        "document": document,
        "records": records,
    }


AT = "2025-03-01T12:00:00Z"


class TestCreditSummary:
    NESTED = f"""
    query {{
      tenants(first: 5) {{
        totalCount
        nodes {{
          id
          credits {{ {SUMMARY} }}
          users(first: 5, orderBy: ID_ASC) {{
            totalCount
            nodes {{
              id
              credits {{ {SUMMARY} }}
              interactions(first: 5) {{
                nodes {{
                  id
                  credits {{ {SUMMARY} }}
                  records {{ source externalId credits }}
                }}
              }}
            }}
          }}
        }}
      }}
    }}"""

    async def test_tenth_three_times_is_exactly_three_tenths_at_every_level(
        self, gql: GraphQLClient
    ) -> None:
        await register(gql, "i1", "t1", "u1", "2025-01-01T00:00:00Z")
        await register(gql, "i2", "t1", "u1", "2025-01-02T00:00:00Z")
        await register(gql, "i3", "t1", "u2", "2025-01-03T00:00:00Z")
        await ingest(
            gql,
            ("STREAM", "i1", "s1", "0.1", "2025-03-01T10:00:00Z"),
            ("TRANSCRIPT", "i1", "x1", "0.1", "2025-03-01T10:01:00Z"),
            ("DOCUMENT", "i1", "d1", "0.1", "2025-03-01T10:02:00Z"),
            ("TRANSCRIPT", "i2", "x2", "0.1", "2025-03-02T10:00:00Z"),
            ("TRANSCRIPT", "i2", "x3", "0.1", "2025-03-02T10:01:00Z"),
            ("TRANSCRIPT", "i2", "x4", "0.1", "2025-03-02T10:02:00Z"),
            ("DOCUMENT", "i3", "d2", "0.1", "2025-03-03T10:00:00Z"),
            ("DOCUMENT", "i3", "d3", "0.2", "2025-03-03T10:01:00Z"),
        )
        tenants = (await gql.data(self.NESTED))["tenants"]
        assert tenants["totalCount"] == 1
        [tenant] = tenants["nodes"]
        assert tenant["credits"] == summary(
            "0.9", stream="0.1", transcript="0.4", document="0.4", records=8
        )
        u1, u2 = tenant["users"]["nodes"]
        assert (u1["id"], u2["id"]) == ("u1", "u2")
        assert u1["credits"] == summary(
            "0.6", stream="0.1", transcript="0.4", document="0.1", records=6
        )
        assert u2["credits"] == summary("0.3", document="0.3", records=2)
        by_id = {i["id"]: i for i in u1["interactions"]["nodes"]}
        assert by_id["i1"]["credits"] == summary(
            "0.3", stream="0.1", transcript="0.1", document="0.1", records=3
        )
        assert by_id["i2"]["credits"] == summary("0.3", transcript="0.3", records=3)
        assert [r["credits"] for r in by_id["i2"]["records"]] == ["0.1"] * 3
        [i3] = u2["interactions"]["nodes"]
        assert i3["credits"] == summary("0.3", document="0.3", records=2)

        single = await gql.data(
            f'{{ interaction(id: "i2") {{ credits {{ {SUMMARY} }} }}'
            f' tenant(id: "t1") {{ user(id: "u2") {{ credits {{ {SUMMARY} }} }} }} }}'
        )
        assert single["interaction"]["credits"]["total"] == "0.3"
        assert single["tenant"]["user"]["credits"]["total"] == "0.3"

    async def test_largest_values_sum_without_rounding(
        self, gql: GraphQLClient
    ) -> None:
        await register(gql, "i1", "t1", "u1")
        biggest = "999999999999.999999999"
        await ingest(
            gql,
            ("STREAM", "i1", "s1", biggest, AT),
            ("STREAM", "i1", "s2", biggest, AT),
            ("DOCUMENT", "i1", "d1", "0.000000002", AT),
        )
        data = await gql.data(f'{{ tenant(id: "t1") {{ credits {{ {SUMMARY} }} }} }}')
        assert data["tenant"]["credits"] == summary(
            "2000000000000",
            stream="1999999999999.999999998",
            document="0.000000002",
            records=3,
        )

    async def test_a_tenant_without_usage_reports_zeros(
        self, gql: GraphQLClient
    ) -> None:
        await register(gql, "i1", "t1", "u1")
        data = await gql.data(
            f'{{ tenant(id: "t1") {{ credits {{ {SUMMARY} }}'
            f' user(id: "u1") {{ credits {{ {SUMMARY} }} }} }} }}'
        )
        assert data["tenant"]["credits"] == ZERO
        assert data["tenant"]["user"]["credits"] == ZERO


class TestTimeRange:
    QUERY = f"""
    query($r: TimeRange) {{
      tenant(id: "t1") {{
        credits(range: $r) {{ {SUMMARY} }}
        user(id: "u1") {{ credits(range: $r) {{ total records }} }}
      }}
      interaction(id: "i1") {{ credits(range: $r) {{ total records }} }}
    }}"""

    async def _setup(self, gql: GraphQLClient) -> None:
        await register(gql, "i1", "t1", "u1")
        await ingest(
            gql,
            ("STREAM", "i1", "before", "1", "2025-03-29T23:59:59.999999Z"),
            ("STREAM", "i1", "first", "2", "2025-03-30T00:00:00Z"),
            ("STREAM", "i1", "inside", "4", "2025-03-30T09:59:59.999999Z"),
            ("STREAM", "i1", "end", "8", "2025-03-30T10:00:00Z"),
        )

    async def totals(self, gql: GraphQLClient, range_: dict[str, Any] | None) -> str:
        data = await gql.data(self.QUERY, {"r": range_})
        tenant = data["tenant"]["credits"]["total"]
        assert data["tenant"]["user"]["credits"]["total"] == tenant
        assert data["interaction"]["credits"]["total"] == tenant
        assert isinstance(tenant, str)
        return tenant

    async def test_half_open_with_offsets_honoured(self, gql: GraphQLClient) -> None:
        await self._setup(gql)
        # 02:00+02:00 is 00:00Z and 12:00+02:00 is 10:00Z.
        local = {"from": "2025-03-30T02:00:00+02:00", "to": "2025-03-30T12:00:00+02:00"}
        assert await self.totals(gql, local) == "6"
        utc = {"from": "2025-03-30T00:00:00Z", "to": "2025-03-30T10:00:00Z"}
        assert await self.totals(gql, utc) == "6"
        west = {"from": "2025-03-29T19:00:00-05:00", "to": "2025-03-30T05:00:00-05:00"}
        assert await self.totals(gql, west) == "6"

    async def test_either_end_may_be_left_out(self, gql: GraphQLClient) -> None:
        await self._setup(gql)
        assert await self.totals(gql, {"from": "2025-03-30T00:00:00Z"}) == "14"
        assert await self.totals(gql, {"to": "2025-03-30T00:00:00Z"}) == "1"
        assert await self.totals(gql, {}) == "15"
        assert await self.totals(gql, None) == "15"

    async def test_an_empty_range_holds_nothing(self, gql: GraphQLClient) -> None:
        await self._setup(gql)
        point = {"from": "2025-03-30T00:00:00Z", "to": "2025-03-30T00:00:00Z"}
        data = await gql.data(self.QUERY, {"r": point})
        assert data["tenant"]["credits"] == ZERO

    async def test_range_counts_records_per_source(self, gql: GraphQLClient) -> None:
        await register(gql, "i1", "t1", "u1")
        await ingest(
            gql,
            ("STREAM", "i1", "a", "0.1", "2025-03-01T00:00:00Z"),
            ("DOCUMENT", "i1", "b", "0.2", "2025-03-02T00:00:00Z"),
            ("TRANSCRIPT", "i1", "c", "0.4", "2025-03-03T00:00:00Z"),
        )
        data = await gql.data(
            self.QUERY,
            {"r": {"from": "2025-03-02T00:00:00Z", "to": "2025-03-04T00:00:00Z"}},
        )
        assert data["tenant"]["credits"] == summary(
            "0.6", document="0.2", transcript="0.4", records=2
        )


USERS = """
query($r: TimeRange, $o: UserOrder, $first: Int = 50, $after: String) {
  tenant(id: "t1") {
    users(range: $r, orderBy: $o, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { id credits(range: $r) { total } }
    }
  }
}"""
FEB = {"from": "2025-02-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"}


class TestUsers:
    async def _setup(self, gql: GraphQLClient) -> None:
        for user in ("u1", "u2", "u3", "u4", "u5"):
            await register(gql, f"i-{user}", "t1", user)
        await register(gql, "other", "t2", "u9")
        await ingest(
            gql,
            ("STREAM", "i-u1", "a", "100", "2025-01-15T00:00:00Z"),
            ("STREAM", "i-u1", "b", "2", "2025-02-10T00:00:00Z"),
            ("STREAM", "i-u2", "c", "1.5", "2025-02-01T00:00:00Z"),
            ("DOCUMENT", "i-u2", "d", "1.5", "2025-02-27T00:00:00Z"),
            ("STREAM", "i-u3", "e", "10", "2025-03-01T00:00:00Z"),
            ("STREAM", "i-u5", "f", "2", "2025-02-28T23:59:59Z"),
            ("STREAM", "other", "g", "50", "2025-02-10T00:00:00Z"),
        )

    async def users(self, gql: GraphQLClient, **variables: Any) -> dict[str, Any]:
        data = await gql.data(USERS, variables)
        result: dict[str, Any] = data["tenant"]["users"]
        return result

    async def test_range_lists_only_users_with_usage_in_it(
        self, gql: GraphQLClient
    ) -> None:
        await self._setup(gql)
        page = await self.users(gql, r=FEB)
        # u2 has 3 in February; u1 has 2 (its 100 are January's); u5 ties u1 on 2
        # and follows it by id; u3's usage starts at the range's end; u4 has none.
        assert [(n["id"], n["credits"]["total"]) for n in page["nodes"]] == [
            ("u2", "3"),
            ("u1", "2"),
            ("u5", "2"),
        ]
        assert page["totalCount"] == 3
        assert page["pageInfo"]["hasNextPage"] is False

    async def test_without_range_every_user_is_listed(self, gql: GraphQLClient) -> None:
        await self._setup(gql)
        page = await self.users(gql)
        assert [(n["id"], n["credits"]["total"]) for n in page["nodes"]] == [
            ("u1", "102"),
            ("u3", "10"),
            ("u2", "3"),
            ("u5", "2"),
            ("u4", "0"),
        ]
        assert page["totalCount"] == 5

    async def test_top_users_and_id_order(self, gql: GraphQLClient) -> None:
        await self._setup(gql)
        top = await self.users(gql, o="CREDITS_DESC", first=2)
        assert [n["id"] for n in top["nodes"]] == ["u1", "u3"]
        assert top["totalCount"] == 5
        assert top["pageInfo"]["hasNextPage"] is True
        by_id = await self.users(gql, o="ID_ASC")
        assert [n["id"] for n in by_id["nodes"]] == ["u1", "u2", "u3", "u4", "u5"]
        in_feb = await self.users(gql, o="ID_ASC", r=FEB)
        assert [n["id"] for n in in_feb["nodes"]] == ["u1", "u2", "u5"]

    async def test_users_of_several_tenants_in_one_query(
        self, gql: GraphQLClient
    ) -> None:
        await self._setup(gql)
        data = await gql.data(
            "{ tenants { nodes { id users(first: 1) { totalCount "
            "nodes { id tenant { id } credits { total } } } } } }"
        )
        assert data["tenants"]["nodes"] == [
            {
                "id": "t1",
                "users": {
                    "totalCount": 5,
                    "nodes": [
                        {
                            "id": "u1",
                            "tenant": {"id": "t1"},
                            "credits": {"total": "102"},
                        }
                    ],
                },
            },
            {
                "id": "t2",
                "users": {
                    "totalCount": 1,
                    "nodes": [
                        {"id": "u9", "tenant": {"id": "t2"}, "credits": {"total": "50"}}
                    ],
                },
            },
        ]

    async def test_a_user_id_is_scoped_to_its_tenant(self, gql: GraphQLClient) -> None:
        await register(gql, "i1", "t1", "same")
        await register(gql, "i2", "t2", "same")
        await ingest(
            gql,
            ("STREAM", "i1", "a", "1", AT),
            ("STREAM", "i2", "b", "2", AT),
        )
        data = await gql.data(
            '{ a: tenant(id: "t1") { user(id: "same") { credits { total } '
            "interactions { nodes { id } } } }"
            ' b: tenant(id: "t2") { user(id: "same") { credits { total } } } }'
        )
        assert data["a"]["user"]["credits"]["total"] == "1"
        assert data["a"]["user"]["interactions"]["nodes"] == [{"id": "i1"}]
        assert data["b"]["user"]["credits"]["total"] == "2"


INTERACTIONS = """
query($r: TimeRange, $first: Int = 50, $after: String) {
  tenant(id: "t1") {
    interactions(range: $r, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { id }
    }
    user(id: "u1") { interactions(range: $r, first: $first, after: $after) {
      totalCount nodes { id } } }
  }
}"""


class TestInteractions:
    async def _setup(self, gql: GraphQLClient) -> None:
        await register(gql, "iA", "t1", "u1", "2025-01-01T00:00:00Z")
        await register(gql, "iB", "t1", "u1", "2025-01-02T00:00:00Z")
        await register(gql, "iC", "t1", "u1", "2025-02-25T00:00:00Z")
        await register(gql, "iD", "t1", "u1", "2025-01-03T00:00:00Z")
        await register(gql, "iE", "t1", "u2", "2025-01-04T00:00:00Z")
        await ingest(
            gql,
            ("STREAM", "iA", "a1", "1", "2025-02-10T00:00:00Z"),
            ("STREAM", "iA", "a2", "1", "2025-03-05T00:00:00Z"),
            ("STREAM", "iB", "b1", "1", "2025-02-20T00:00:00Z"),
            ("STREAM", "iD", "d1", "1", "2025-01-15T00:00:00Z"),
            ("STREAM", "iE", "e1", "1", "2025-02-15T00:00:00Z"),
        )

    async def test_range_orders_by_latest_usage_inside_it(
        self, gql: GraphQLClient
    ) -> None:
        await self._setup(gql)
        tenant = (await gql.data(INTERACTIONS, {"r": FEB}))["tenant"]
        # iA's latest usage overall (March) is outside the range: its February
        # usage ranks it after iB and iE. iC and iD have no usage in February.
        assert [n["id"] for n in tenant["interactions"]["nodes"]] == ["iB", "iE", "iA"]
        assert tenant["interactions"]["totalCount"] == 3
        user = tenant["user"]["interactions"]
        assert [n["id"] for n in user["nodes"]] == ["iB", "iA"]
        assert user["totalCount"] == 2

    async def test_walking_a_range_page_by_page(self, gql: GraphQLClient) -> None:
        await self._setup(gql)
        seen: list[str] = []
        after = None
        while True:
            variables = {"r": FEB, "first": 1, "after": after}
            page = (await gql.data(INTERACTIONS, variables))["tenant"]["interactions"]
            assert page["totalCount"] == 3
            seen += [n["id"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == ["iB", "iE", "iA"]
        empty = await gql.data(INTERACTIONS, {"r": FEB, "first": 0})
        assert empty["tenant"]["interactions"]["pageInfo"]["hasNextPage"] is True
        assert empty["tenant"]["interactions"]["nodes"] == []

    async def test_listed_credits_equal_a_direct_lookup(
        self, gql: GraphQLClient
    ) -> None:
        # Credits of listed interactions (batched per page) equal what
        # interaction(id:) reads on its own, per source.
        await self._setup(gql)
        await ingest(
            gql,
            ("DOCUMENT", "iB", "b2", "2.25", "2025-02-21T00:00:00Z"),
            ("TRANSCRIPT", "iB", "b3", "0.000000001", "2025-02-01T00:00:00Z"),
            ("TRANSCRIPT", "iB", "b4", "7", "2025-03-01T00:00:00Z"),
        )
        fields = "total stream transcript document records"
        listed = await gql.data(
            'query($r: TimeRange) { tenant(id: "t1") {'
            " interactions(range: $r) { nodes { id"
            f" credits(range: $r) {{ {fields} }} }} }} }} }}",
            {"r": FEB},
        )
        nodes = listed["tenant"]["interactions"]["nodes"]
        assert [n["id"] for n in nodes] == ["iB", "iE", "iA"]
        for node in nodes:
            direct = await gql.data(
                "query($i: ID!, $r: TimeRange) { interaction(id: $i) {"
                f" credits(range: $r) {{ {fields} }} }} }}",
                {"i": node["id"], "r": FEB},
            )
            assert node["credits"] == direct["interaction"]["credits"]
        assert nodes[0]["credits"] == {
            "total": "3.250000001",
            "stream": "1",
            "transcript": "0.000000001",
            "document": "2.25",
            "records": 3,
        }
        # Credits over another range than the page's, and through a fragment.
        other = await gql.data(
            'query($r: TimeRange) { tenant(id: "t1") {'
            " interactions(range: $r) { ...page } } }"
            " fragment page on InteractionConnection { nodes { id"
            " all: credits { total records } feb: credits(range: $r) { total } } }",
            {"r": FEB},
        )
        totals = {
            n["id"]: (n["all"], n["feb"]["total"])
            for n in other["tenant"]["interactions"]["nodes"]
        }
        assert totals == {
            "iB": ({"total": "10.250000001", "records": 4}, "3.250000001"),
            "iE": ({"total": "1", "records": 1}, "1"),
            "iA": ({"total": "2", "records": 2}, "1"),
        }

    async def test_without_range_unused_interactions_sort_by_created_at(
        self, gql: GraphQLClient
    ) -> None:
        await self._setup(gql)
        tenant = (await gql.data(INTERACTIONS))["tenant"]
        # Sort keys: iA 03-05 (usage), iC 02-25 (created), iB 02-20, iE 02-15,
        # iD 01-15.
        assert [n["id"] for n in tenant["interactions"]["nodes"]] == [
            "iA",
            "iC",
            "iB",
            "iE",
            "iD",
        ]
        assert tenant["interactions"]["totalCount"] == 5
        user = tenant["user"]["interactions"]
        assert [n["id"] for n in user["nodes"]] == ["iA", "iC", "iB", "iD"]
        assert user["totalCount"] == 4

    async def test_interaction_fields(self, gql: GraphQLClient) -> None:
        await register(gql, "i1", "t1", "u1", "2025-03-30T02:30:00+02:00")
        await ingest(
            gql,
            ("DOCUMENT", "i1", "d1", "0.5", "2025-03-30T03:00:00+02:00"),
            ("STREAM", "i1", "s1", "0.25", "2025-03-30T01:00:00Z"),
            ("TRANSCRIPT", "i1", "t1", "1", "2025-03-30T00:59:00Z"),
        )
        data = await gql.data(
            '{ interaction(id: "i1") { id createdAt tenant { id } user { id } '
            "records { source externalId credits createdAt interactionId "
            "interaction { id } } "
            "documents: records(source: DOCUMENT) { externalId } } }"
        )
        interaction = data["interaction"]
        assert interaction["createdAt"] == "2025-03-30T00:30:00Z"
        assert interaction["tenant"] == {"id": "t1"}
        assert interaction["user"] == {"id": "u1"}
        assert interaction["records"] == [
            {
                "source": "TRANSCRIPT",
                "externalId": "t1",
                "credits": "1",
                "createdAt": "2025-03-30T00:59:00Z",
                "interactionId": "i1",
                "interaction": {"id": "i1"},
            },
            {
                "source": "DOCUMENT",
                "externalId": "d1",
                "credits": "0.5",
                "createdAt": "2025-03-30T01:00:00Z",
                "interactionId": "i1",
                "interaction": {"id": "i1"},
            },
            {
                "source": "STREAM",
                "externalId": "s1",
                "credits": "0.25",
                "createdAt": "2025-03-30T01:00:00Z",
                "interactionId": "i1",
                "interaction": {"id": "i1"},
            },
        ]
        assert interaction["documents"] == [{"externalId": "d1"}]


TENANTS = """
query($first: Int = 50, $after: String) {
  tenants(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id }
  }
}"""


async def walk(
    gql: GraphQLClient, query: str, path: list[str], first: int, **variables: Any
) -> list[dict[str, Any]]:
    """Every page of a connection, following endCursor."""
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        data = await gql.data(query, {**variables, "first": first, "after": after})
        for name in path:
            data = data[name]
        pages.append(data)
        if not data["pageInfo"]["hasNextPage"]:
            return pages
        after = data["pageInfo"]["endCursor"]
        assert after is not None
        assert len(pages) < 50, "pagination does not end"


class TestPagination:
    async def test_walking_tenants_visits_each_once(self, gql: GraphQLClient) -> None:
        names = [f"t{n:02d}" for n in range(7)]
        for name in reversed(names):
            await register(gql, f"i-{name}", name, "u")
        pages = await walk(gql, TENANTS, ["tenants"], first=3)
        assert [[n["id"] for n in p["nodes"]] for p in pages] == [
            names[0:3],
            names[3:6],
            names[6:7],
        ]
        assert [p["totalCount"] for p in pages] == [7, 7, 7]
        assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
        # Past the end: empty, still counted.
        past = await gql.data(
            TENANTS, {"first": 3, "after": pages[-1]["pageInfo"]["endCursor"]}
        )
        assert past["tenants"] == {
            "totalCount": 7,
            "pageInfo": {"hasNextPage": False, "endCursor": None},
            "nodes": [],
        }

    async def test_first_zero_and_exact_fit(self, gql: GraphQLClient) -> None:
        for name in ("a", "b"):
            await register(gql, f"i-{name}", name, "u")
        none = (await gql.data(TENANTS, {"first": 0}))["tenants"]
        assert none["nodes"] == []
        assert none["totalCount"] == 2
        assert none["pageInfo"] == {"hasNextPage": True, "endCursor": None}
        exact = (await gql.data(TENANTS, {"first": 2}))["tenants"]
        assert [n["id"] for n in exact["nodes"]] == ["a", "b"]
        assert exact["pageInfo"]["hasNextPage"] is False
        nested = await gql.data(
            '{ tenant(id: "a") { users(first: 0) { totalCount nodes { id } }'
            " interactions(first: 0) { totalCount pageInfo { hasNextPage } } } }"
        )
        assert nested["tenant"] == {
            "users": {"totalCount": 1, "nodes": []},
            "interactions": {"totalCount": 1, "pageInfo": {"hasNextPage": True}},
        }

    async def test_walking_users_by_credits(self, gql: GraphQLClient) -> None:
        credits = {f"u{n}": str(n % 3) for n in range(8)}
        for user in credits:
            await register(gql, f"i-{user}", "t1", user)
        await ingest(gql, *[("STREAM", f"i-{u}", u, c, AT) for u, c in credits.items()])
        pages = await walk(gql, USERS, ["tenant", "users"], first=3, o="CREDITS_DESC")
        seen = [n["id"] for p in pages for n in p["nodes"]]
        expected = sorted(credits, key=lambda u: (-int(credits[u]), u))
        assert seen == expected
        assert [p["totalCount"] for p in pages] == [8, 8, 8]
        past = await self._after_last(gql, USERS, ["tenant", "users"], pages)
        assert (past["nodes"], past["totalCount"]) == ([], 8)

    async def test_walking_users_in_a_range(self, gql: GraphQLClient) -> None:
        for n in range(5):
            await register(gql, f"i{n}", "t1", f"u{n}")
        await ingest(
            gql,
            *[
                ("STREAM", f"i{n}", f"s{n}", "1", f"2025-02-0{n + 1}T00:00:00Z")
                for n in range(5)
            ],
        )
        window = {"from": "2025-02-02T00:00:00Z", "to": "2025-02-05T00:00:00Z"}
        pages = await walk(
            gql, USERS, ["tenant", "users"], first=2, r=window, o="ID_ASC"
        )
        assert [[n["id"] for n in p["nodes"]] for p in pages] == [["u1", "u2"], ["u3"]]
        assert [p["totalCount"] for p in pages] == [3, 3]

    async def test_walking_interactions(self, gql: GraphQLClient) -> None:
        ids = [f"i{n}" for n in range(7)]
        for n, interaction in enumerate(ids):
            await register(gql, interaction, "t1", "u1", f"2025-01-0{n + 1}T00:00:00Z")
        pages = await walk(gql, INTERACTIONS, ["tenant", "interactions"], first=2)
        assert [n["id"] for p in pages for n in p["nodes"]] == list(reversed(ids))
        assert len(pages) == 4
        assert {p["totalCount"] for p in pages} == {7}
        past = await self._after_last(
            gql, INTERACTIONS, ["tenant", "interactions"], pages
        )
        assert (past["nodes"], past["totalCount"]) == ([], 7)

    async def test_first_is_capped_at_a_hundred(self, gql: GraphQLClient) -> None:
        await asyncio.gather(
            *[register(gql, f"i{n:03d}", "t1", f"u{n:03d}") for n in range(101)]
        )
        page = await gql.data(
            '{ tenant(id: "t1") { users(first: 100, orderBy: ID_ASC) { totalCount '
            "pageInfo { hasNextPage endCursor } nodes { id } } } }"
        )
        users = page["tenant"]["users"]
        assert len(users["nodes"]) == 100
        assert users["totalCount"] == 101
        assert users["pageInfo"]["hasNextPage"] is True
        body = await gql('{ tenant(id: "t1") { users(first: 101) { totalCount } } }')
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "first" in body["errors"][0]["message"]
        rest = await gql.data(
            'query($a: String) { tenant(id: "t1") { users(after: $a, orderBy: ID_ASC)'
            " { nodes { id } } } }",
            {"a": users["pageInfo"]["endCursor"]},
        )
        assert rest["tenant"]["users"]["nodes"] == [{"id": "u100"}]

    @staticmethod
    async def _after_last(
        gql: GraphQLClient, query: str, path: list[str], pages: list[dict[str, Any]]
    ) -> dict[str, Any]:
        cursor = pages[-1]["pageInfo"]["endCursor"]
        data = await gql.data(query, {"first": 5, "after": cursor, "o": "CREDITS_DESC"})
        for name in path:
            data = data[name]
        return data


class TestLookups:
    async def test_unknown_ids_are_null(self, gql: GraphQLClient) -> None:
        await register(gql, "i1", "t1", "u1")
        await register(gql, "i2", "t2", "u2")
        data = await gql.data(
            '{ tenant(id: "t1") { id user(id: "nobody") { id } other: user(id: "u2") '
            '{ id } known: user(id: "u1") { id tenant { id } } }'
            ' nope: tenant(id: "nope") { id }'
            ' interaction(id: "nope") { id } }'
        )
        assert data == {
            "tenant": {
                "id": "t1",
                "user": None,
                "other": None,
                "known": {"id": "u1", "tenant": {"id": "t1"}},
            },
            "nope": None,
            "interaction": None,
        }

    async def test_usage_record_interaction_is_null_until_registered(
        self, gql: GraphQLClient
    ) -> None:
        record = """
        mutation { recordDocumentUsage(input: {interactionId: "late", documentId: "d1",
          creditsConsumed: "0.3", createdAt: "2025-03-01T00:00:00Z"})
          { interactionId interaction { id } } }"""
        early = await gql.data(record)
        assert early["recordDocumentUsage"] == {
            "interactionId": "late",
            "interaction": None,
        }
        assert (await gql.data('{ interaction(id: "late") { id } }')) == {
            "interaction": None
        }
        await register(gql, "late", "t1", "u1")
        again = await gql.data(record)
        assert again["recordDocumentUsage"]["interaction"] == {"id": "late"}
        data = await gql.data(
            '{ interaction(id: "late") { records { interaction { id user { id } } } } }'
        )
        assert data["interaction"]["records"] == [
            {"interaction": {"id": "late", "user": {"id": "u1"}}}
        ]
