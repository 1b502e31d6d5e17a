"""Operations, a two-tenant ledger and small helpers shared by the attack tests."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from service.auth import keys
from service.auth.principal import Role
from service.db import models
from service.db.session import Database

TENANTS = "{ tenants { totalCount nodes { id } } }"
INTERACTION = "query($i: ID!) { interaction(id: $i) { id } }"
JOB = "query($j: ID!) { job(id: $j) { id kind status } }"

# What an admin sees of a tenant and of an interaction: owners and usage.
TENANT_STATE = """{
  credits { total records }
  users(first: 100, orderBy: ID_ASC) { totalCount nodes { id } }
  interactions(first: 100) { totalCount nodes { id } }
}"""
INTERACTION_STATE = """{
  tenant { id } user { id } credits { total records }
  records { source externalId credits }
}"""

# Tenant t1: users u1 and "shared"; tenant t2: users u2-t2 and "shared" (a user
# id both tenants use). t2's ids carry its name and its credits are distinctive,
# so a response that mentions any of T2_MARKS has leaked something of t2.
LEDGER: list[tuple[str, str, str]] = [
    ("int-t1-a", "t1", "u1"),
    ("int-t1-b", "t1", "shared"),
    ("int-t2-a", "t2", "u2-t2"),
    ("int-t2-b", "t2", "shared"),
]
USAGE: list[tuple[str, str, str, str]] = [
    # (source, interaction, external id, credits)
    ("TRANSCRIPT", "int-t1-a", "tr-t1-a", "0.1"),
    ("DOCUMENT", "int-t1-a", "doc-t1-a", "0.2"),
    ("STREAM", "int-t1-b", "st-t1-b", "1"),
    ("TRANSCRIPT", "int-t2-a", "tr-t2-a", "7.77"),
    ("DOCUMENT", "int-t2-b", "doc-t2-b", "8.88"),
    ("STREAM", "int-t2-b", "st-t2-b", "9.99"),
]
USAGE_AT = "2025-03-10T12:00:00Z"
T1_TOTAL = "1.3"
T2_TOTAL = "26.64"
# Any of these in a response means something of tenant t2 leaked.
T2_MARKS = ("t2", "7.77", "8.88", "9.99", "26.64")


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST one operation, with `Authorization: Bearer <key>` when a key is given."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=sent
    )


async def call(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> dict[str, Any]:
    """The decoded body of one operation."""
    body: dict[str, Any] = (await post(http, query, variables, key=key)).json()
    return body


async def data(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    key: str,
) -> dict[str, Any]:
    """`data` of an operation that must succeed."""
    body = await call(http, query, variables, key=key)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


def codes(body: dict[str, Any]) -> list[str]:
    """The `extensions.code` of every error."""
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def only_code(body: dict[str, Any]) -> str:
    """The code of the only error."""
    found = codes(body)
    assert len(found) == 1, body
    return found[0]


async def new_key(
    db: Database, role: str, tenant: str | None = None
) -> tuple[uuid.UUID, str]:
    """(key id, plain key) of a new key."""
    async with db.write() as session:
        info, plain = await keys.create_key(session, Role(role), tenant)
    return info.id, plain


async def seed_two_tenants(http: httpx.AsyncClient, admin: str) -> None:
    """Write LEDGER and USAGE with an admin key, in one request."""
    registrations = " ".join(
        f'r{n}: registerInteraction(input: {{interactionId: "{interaction}", '
        f'tenantId: "{tenant}", userId: "{user}"}}) {{ id }}'
        for n, (interaction, tenant, user) in enumerate(LEDGER)
    )
    operation = (
        "mutation($r: [UsageRecordInput!]!) { "
        f"{registrations} ingestUsage(records: $r) {{ accepted }} }}"
    )
    batch = [
        {
            "source": source,
            "interactionId": interaction,
            "externalId": external,
            "credits": credits,
            "createdAt": USAGE_AT,
        }
        for source, interaction, external, credits in USAGE
    ]
    result = await data(http, operation, {"r": batch}, key=admin)
    assert result["ingestUsage"]["accepted"] == len(USAGE)


async def snapshot(http: httpx.AsyncClient, admin: str, *interactions: str) -> Any:
    """What an admin sees of both tenants and of the given interactions."""
    parts = [f't{n}: tenant(id: "t{n}") {TENANT_STATE}' for n in (1, 2)]
    parts += [
        f'i{n}: interaction(id: "{i}") {INTERACTION_STATE}'
        for n, i in enumerate(interactions)
    ]
    result = await data(http, "{ " + " ".join(parts) + " }", key=admin)
    state = {"t1": result["t1"], "t2": result["t2"]}
    state.update({i: result[f"i{n}"] for n, i in enumerate(interactions)})
    return state


async def insert_job(
    db: Database,
    *,
    tenant: str | None,
    interaction: str | None = None,
    api_key_id: uuid.UUID | None = None,
    usage_record_id: uuid.UUID | None = None,
) -> str:
    """A job row written directly (the job mutations are not part of this suite)."""
    job = models.Job(
        kind="requestTranscript",
        status="QUEUED",
        attempts=0,
        payload={},
        state={},
        tenant_id=tenant,
        interaction_id=interaction,
        api_key_id=api_key_id,
        usage_record_id=usage_record_id,
    )
    async with db.write() as session:
        session.add(job)
        await session.flush()
        return str(job.id)


def mentions(value: object, *needles: str) -> list[str]:
    """Which of `needles` occur in the scalars of `value` (a JSON document).

    A needle that is a number (a credit figure) matches a scalar equal to it as
    a decimal ("9.990" matches "9.99") or the number standing alone in a text
    ("over 9.99 credits"), not digits inside another number (a timestamp's
    "…:19.991Z"); any other needle matches wherever it occurs in a scalar.
    """
    leaves = [str(leaf) for leaf in _leaves(value)]
    return [n for n in needles if any(_matches(n, leaf) for leaf in leaves)]


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [] if value is None else [value]


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _matches(needle: str, leaf: str) -> bool:
    if (figure := _number(needle)) is not None:
        alone = rf"(?<![\d.]){re.escape(needle)}(?![\d])"
        return _number(leaf) == figure or re.search(alone, leaf) is not None
    return needle in leaf


# Text that would mean a stack trace, SQL or the database driver reached a client.
LEAK_MARKERS = (
    "traceback",
    'file "',
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "sqlite",
    "psycopg",
    "postgres",
    "select ",
    "insert into",
    "[sql:",
    "[parameters:",
)


def leaked(text: str) -> list[str]:
    """The leak markers found in a response body (case-insensitive)."""
    lowered = text.lower()
    return [marker for marker in LEAK_MARKERS if marker in lowered]


async def check_no_leak(response: httpx.Response) -> None:
    """Fail when a response body carries a leak marker (GraphiQL's page excepted)."""
    await response.aread()
    if response.headers.get("content-type", "").startswith("text/html"):
        return  # the GraphiQL page is JavaScript, not an error report
    found = leaked(response.text)
    assert not found, f"response leaks {found}: {response.text[:2000]}"


def client_for(url: str) -> httpx.AsyncClient:
    """A leak-checking client for a server started by a test."""
    return httpx.AsyncClient(
        base_url=url, timeout=60, event_hooks={"response": [check_no_leak]}
    )
