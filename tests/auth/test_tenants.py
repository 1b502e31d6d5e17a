"""Tenant-bound keys: another tenant is invisible on every read path, and every
write that names or touches it is FORBIDDEN and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import pytest_asyncio

from service.db.session import Database
from service.graphql import args
from tests.auth.helpers import (
    INTERACTION,
    JOB,
    T1_TOTAL,
    T2_MARKS,
    T2_TOTAL,
    call,
    data,
    insert_job,
    mentions,
    new_key,
    only_code,
    seed_two_tenants,
    snapshot,
)
from tests.fixtures.operations import (
    DOCUMENT,
    INGEST,
    REGISTER,
    STREAM,
    TENANT,
    TRANSCRIPT,
)

pytestmark = pytest.mark.asyncio

# Everything a tenant holds, at every depth.
USAGE_ARGS = 'range: {from: "2025-03-01T00:00:00Z", to: "2025-04-01T00:00:00Z"}'
CREDITS = "credits { total stream transcript document records }"
RECORDS = (
    "records { id externalId credits interactionId interaction { id tenant { id } } }"
)
INTERACTION_FIELDS = f"id createdAt tenant {{ id }} user {{ id }} {CREDITS} {RECORDS}"
USER_FIELDS = f"""
  id tenant {{ id }} {CREDITS}
  usage({USAGE_ARGS}, granularity: MONTH) {{ start {CREDITS} }}
  interactions(first: 10) {{ totalCount nodes {{ {INTERACTION_FIELDS} }} }}
"""
TENANT_FIELDS = f"""
  id {CREDITS}
  usage({USAGE_ARGS}, granularity: MONTH) {{ start {CREDITS} }}
  users(first: 10) {{ totalCount nodes {{ {USER_FIELDS} }} }}
  byId: users(first: 10, orderBy: ID_ASC) {{ totalCount nodes {{ id }} }}
  inRange: users({USAGE_ARGS}) {{ totalCount nodes {{ id {CREDITS} }} }}
  shared: user(id: "shared") {{ {USER_FIELDS} }}
  foreignUser: user(id: "u2-t2") {{ id }}
  interactions(first: 10) {{ totalCount nodes {{ {INTERACTION_FIELDS} }} }}
  recent: interactions({USAGE_ARGS}) {{ totalCount nodes {{ id }} }}
"""
EVERYTHING = f"""
query {{
  tenants(first: 10) {{ totalCount nodes {{ {TENANT_FIELDS} }} }}
  mine: tenant(id: "t1") {{ {TENANT_FIELDS} }}
  theirs: tenant(id: "t2") {{ {TENANT_FIELDS} }}
  theirInteraction: interaction(id: "int-t2-b") {{ {INTERACTION_FIELDS} }}
  myInteraction: interaction(id: "int-t1-b") {{ {INTERACTION_FIELDS} }}
}}"""


@pytest_asyncio.fixture
async def admin(db: Database, api: httpx.AsyncClient) -> str:
    _, key = await new_key(db, "admin")
    await seed_two_tenants(api, key)
    return key


@pytest.mark.parametrize("role", ["reader", "admin"])
async def test_every_read_path_shows_only_the_bound_tenant(
    db: Database, api: httpx.AsyncClient, admin: str, role: str
) -> None:
    _, key = await new_key(db, role, "t1")
    result = await data(api, EVERYTHING, key=key)
    assert mentions(result, *T2_MARKS) == [], result
    assert result["tenants"]["totalCount"] == 1
    assert [t["id"] for t in result["tenants"]["nodes"]] == ["t1"]
    assert result["theirs"] is None
    assert result["theirInteraction"] is None
    mine = result["mine"]
    assert mine == result["tenants"]["nodes"][0]
    assert mine["credits"]["total"] == T1_TOTAL
    assert mine["usage"][0]["credits"]["total"] == T1_TOTAL
    assert mine["users"]["totalCount"] == 2
    assert mine["byId"]["totalCount"] == 2
    assert mine["foreignUser"] is None
    # "shared" is a user id in both tenants: only t1's usage of it counts.
    assert mine["shared"]["credits"]["total"] == "1"
    assert [i["id"] for i in mine["shared"]["interactions"]["nodes"]] == ["int-t1-b"]
    assert {i["id"] for i in mine["interactions"]["nodes"]} == {"int-t1-a", "int-t1-b"}
    assert result["myInteraction"]["records"][0]["interaction"]["tenant"] == {
        "id": "t1"
    }
    # The same query with an unbound key does see t2 (the query is not blind).
    everything = await data(api, EVERYTHING, key=admin)
    assert everything["theirs"]["credits"]["total"] == T2_TOTAL
    assert mentions(everything, "t2") == ["t2"]


async def test_root_lookups_of_another_tenant_are_null(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    _, reader = await new_key(db, "reader", "t1")
    assert (await data(api, TENANT, {"t": "t2"}, key=reader))["tenant"] is None
    assert (await data(api, TENANT, {"t": "t1"}, key=reader))["tenant"] == {"id": "t1"}
    for interaction in ("int-t2-a", "int-t2-b", "no-such-interaction"):
        found = await data(api, INTERACTION, {"i": interaction}, key=reader)
        assert found["interaction"] is None
    # Paging past the only visible tenant does not reach the next one.
    query = (
        "query($a: String) { tenants(first: 1, after: $a) { totalCount nodes { id } } }"
    )
    page = await data(api, query, {"a": args.encode_cursor(0)}, key=reader)
    assert page["tenants"] == {"totalCount": 1, "nodes": []}


async def test_jobs_of_another_tenant_are_null(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    _, reader = await new_key(db, "reader", "t1")
    mine = await insert_job(db, tenant="t1", interaction="int-t1-a")
    theirs = await insert_job(db, tenant="t2", interaction="int-t2-a")
    no_tenant = await insert_job(db, tenant=None)
    assert (await data(api, JOB, {"j": mine}, key=reader))["job"]["id"] == mine
    for job in (theirs, no_tenant):
        assert (await data(api, JOB, {"j": job}, key=reader))["job"] is None


async def test_a_record_whose_interaction_moved_away_hides_it(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    """Once its interaction is t2's, a t1 job shows neither it nor its usage record."""
    await data(api, REGISTER, {"i": "int-move", "t": "t1", "u": "u1"}, key=admin)
    record = await data(
        api, STREAM, {"i": "int-move", "x": "st-move", "c": "5"}, key=admin
    )
    job = await insert_job(
        db,
        tenant="t1",
        interaction="int-move",
        usage_record_id=uuid.UUID(record["recordStreamUsage"]["id"]),
    )
    await data(api, REGISTER, {"i": "int-move", "t": "t2", "u": "u2-t2"}, key=admin)
    _, reader = await new_key(db, "reader", "t1")
    query = """query($j: ID!) { job(id: $j) {
      interaction { id } usage { externalId interaction { id tenant { id } } } } }"""
    found = (await data(api, query, {"j": job}, key=reader))["job"]
    assert found["interaction"] is None
    assert found["usage"] is None
    tenant = await data(api, EVERYTHING, key=reader)
    assert mentions(tenant, "int-move", "st-move", "t2") == []
    assert tenant["mine"]["credits"]["total"] == T1_TOTAL


def batch(*records: tuple[str, str, str, str]) -> dict[str, Any]:
    return {
        "r": [
            {"source": s, "interactionId": i, "externalId": x, "credits": c}
            for s, i, x, c in records
        ]
    }


FORBIDDEN_WRITES: list[Any] = [
    pytest.param(
        REGISTER, {"i": "int-evil", "t": "t2", "u": "evil"}, id="register-into-other"
    ),
    pytest.param(
        REGISTER, {"i": "int-t2-a", "t": "t1", "u": "u1"}, id="steal-interaction"
    ),
    pytest.param(
        REGISTER, {"i": "int-t2-a", "t": "t2", "u": "evil"}, id="move-their-user"
    ),
    pytest.param(
        TRANSCRIPT, {"i": "int-t2-a", "x": "tr-evil", "c": "1"}, id="transcript"
    ),
    pytest.param(DOCUMENT, {"i": "int-t2-a", "x": "doc-evil", "c": "1"}, id="document"),
    pytest.param(STREAM, {"i": "int-t2-b", "x": "st-evil", "c": "1"}, id="stream"),
    pytest.param(
        INGEST,
        batch(
            ("STREAM", "int-t1-a", "st-ok-1", "1"),
            ("STREAM", "int-t2-a", "st-evil", "1"),
            ("STREAM", "int-new", "st-ok-2", "1"),
        ),
        id="batch-with-one-foreign-record",
    ),
    # A record key (source, external id) that t2 already holds, sent for an
    # interaction of t1 or an unregistered one: neither a duplicate nor a
    # conflict may reveal t2's interaction or credits.
    pytest.param(
        TRANSCRIPT,
        {"i": "int-t1-a", "x": "tr-t2-a", "c": "7.77"},
        id="their-record-same-credits",
    ),
    pytest.param(
        TRANSCRIPT,
        {"i": "int-t1-a", "x": "tr-t2-a", "c": "3"},
        id="their-record-other-credits",
    ),
    pytest.param(
        STREAM,
        {"i": "int-free", "x": "st-t2-b", "c": "9.99"},
        id="their-record-unregistered",
    ),
    pytest.param(
        INGEST,
        batch(
            ("STREAM", "int-t1-a", "st-ok-1", "1"),
            ("DOCUMENT", "int-t1-a", "doc-t2-b", "8.88"),
        ),
        id="batch-with-their-record-key",
    ),
]


@pytest.mark.parametrize(("operation", "variables"), FORBIDDEN_WRITES)
@pytest.mark.parametrize("role", ["ingest", "admin"])
async def test_writes_touching_another_tenant_are_forbidden_and_change_nothing(
    db: Database,
    api: httpx.AsyncClient,
    admin: str,
    role: str,
    operation: str,
    variables: dict[str, Any],
) -> None:
    _, key = await new_key(db, role, "t1")
    watched = ("int-t2-a", "int-t2-b", "int-evil", "int-new", "int-free")
    before = await snapshot(api, admin, *watched)
    body = await call(api, operation, variables, key=key)
    assert only_code(body) == "FORBIDDEN", body
    assert body["data"] is None
    shown = [
        body["data"],
        body["errors"][0]["message"],
        body["errors"][0]["extensions"],
    ]
    assert mentions(shown, *T2_MARKS) == [], body
    if operation is INGEST:
        assert "records[1]" in body["errors"][0]["message"]
    assert await snapshot(api, admin, *watched) == before


async def test_registering_usage_another_tenant_wrote_is_forbidden(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    _, theirs = await new_key(db, "ingest", "t2")
    _, mine = await new_key(db, "ingest", "t1")
    await data(
        api, TRANSCRIPT, {"i": "int-orphan", "x": "tr-orphan", "c": "7"}, key=theirs
    )
    before = await snapshot(api, admin, "int-orphan")
    body = await call(
        api, REGISTER, {"i": "int-orphan", "t": "t1", "u": "u1"}, key=mine
    )
    assert only_code(body) == "FORBIDDEN", body
    assert await snapshot(api, admin, "int-orphan") == before
    assert before["int-orphan"] is None
    # t2's own key may register it; then its usage is t2's.
    await data(api, REGISTER, {"i": "int-orphan", "t": "t2", "u": "u2-t2"}, key=theirs)
    after = await snapshot(api, admin, "int-orphan")
    assert after["int-orphan"]["tenant"] == {"id": "t2"}
    assert after["t2"]["credits"]["total"] == "33.64"


async def test_bound_keys_write_their_own_tenant(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    """The control for the refusals above: the same writes inside t1 succeed."""
    _, key = await new_key(db, "ingest", "t1")
    await data(api, REGISTER, {"i": "int-t1-c", "t": "t1", "u": "u1"}, key=key)
    await data(api, REGISTER, {"i": "int-t1-a", "t": "t1", "u": "shared"}, key=key)
    await data(api, TRANSCRIPT, {"i": "int-t1-c", "x": "tr-t1-c", "c": "2"}, key=key)
    await data(api, TRANSCRIPT, {"i": "int-t1-c", "x": "tr-t1-c", "c": "2"}, key=key)
    await data(api, INGEST, batch(("STREAM", "int-t1-b", "st-t1-x", "1")), key=key)
    state = await snapshot(api, admin, "int-t1-a")
    assert state["t1"]["credits"] == {"total": "4.3", "records": 5}
    assert state["int-t1-a"]["user"] == {"id": "shared"}
    assert state["t2"]["credits"]["total"] == T2_TOTAL
