"""Unregistered interactions and tenant-bound keys (issue 10 item 13).

The rule (README, "Interaction ids are first come, first served"): an
interaction belongs to the tenant it is registered to; while unregistered, to
the tenant whose bound key first wrote usage for it (a pin). A key bound to
another tenant gets one and the same FORBIDDEN for either, whatever it tries
(register, record, a batch), and changes nothing. Admin and unbound keys
(webhooks, the worker) are not bound by pins.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from service.auth.principal import Principal, Role
from service.db.models import UsageRecord
from service.db.session import Database
from service.errors import Forbidden
from service.uow import unit_of_work
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service
from tests.auth.helpers import (
    T2_MARKS,
    call,
    data,
    mentions,
    new_key,
    seed_two_tenants,
    snapshot,
)
from tests.fixtures.operations import INGEST, REGISTER, STREAM, TRANSCRIPT

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def admin(db: Database, api: httpx.AsyncClient) -> str:
    _, key = await new_key(db, "admin")
    await seed_two_tenants(api, key)
    return key


@pytest_asyncio.fixture
async def t2_key(db: Database, api: httpx.AsyncClient, admin: str) -> str:
    """t2's ingest key, which has written usage for the unregistered int-pinned."""
    _, key = await new_key(db, "ingest", "t2")
    await data(api, STREAM, {"i": "int-pinned", "x": "st-pin-t2", "c": "9.99"}, key=key)
    return key


def _attempts(interaction: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (REGISTER, {"i": interaction, "t": "t1", "u": "u1"}),
        (STREAM, {"i": interaction, "x": "st-evil", "c": "1"}),
        (TRANSCRIPT, {"i": interaction, "x": "tr-evil", "c": "1"}),
        (
            INGEST,
            {
                "r": [
                    {
                        "source": "STREAM",
                        "interactionId": "int-t1-a",
                        "externalId": "st-ok",
                        "credits": "1",
                    },
                    {
                        "source": "DOCUMENT",
                        "interactionId": interaction,
                        "externalId": "doc-evil",
                        "credits": "1",
                    },
                ]
            },
        ),
    ]


def _answer(body: dict[str, Any]) -> Any:
    assert body["data"] is None, body
    return [(e["message"], e["extensions"]) for e in body["errors"]]


@pytest.mark.parametrize("role", ["ingest", "admin"])
async def test_registered_and_pinned_get_the_same_answer(
    db: Database, api: httpx.AsyncClient, admin: str, t2_key: str, role: str
) -> None:
    """Whether t2 registered an id or only wrote usage for it, a t1 key hears
    the same FORBIDDEN, and nothing changes."""
    _, key = await new_key(db, role, "t1")
    watched = ("int-t2-a", "int-pinned")
    before = await snapshot(api, admin, *watched)
    for (operation, registered), (_, pinned) in zip(
        _attempts("int-t2-a"), _attempts("int-pinned"), strict=True
    ):
        first = await call(api, operation, registered, key=key)
        second = await call(api, operation, pinned, key=key)
        assert _answer(first) == _answer(second)
        assert first["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert mentions(_answer(first), *T2_MARKS, "int-pinned") == []
    assert await snapshot(api, admin, *watched) == before


async def test_a_pin_cannot_be_squatted_by_another_tenants_usage(
    db: Database, api: httpx.AsyncClient, admin: str, t2_key: str
) -> None:
    """t1 cannot write usage onto t2's unregistered interaction (which would
    have blocked t2 from registering it), and t2 still registers it."""
    _, t1 = await new_key(db, "ingest", "t1")
    body = await call(
        api, STREAM, {"i": "int-pinned", "x": "st-squat", "c": "5"}, key=t1
    )
    assert _answer(body)[0][1]["code"] == "FORBIDDEN"
    await data(api, REGISTER, {"i": "int-pinned", "t": "t2", "u": "u2-t2"}, key=t2_key)
    state = await snapshot(api, admin, "int-pinned")
    assert state["int-pinned"]["tenant"] == {"id": "t2"}
    assert state["int-pinned"]["records"] == [
        {"source": "STREAM", "externalId": "st-pin-t2", "credits": "9.99"}
    ]
    assert state["t1"]["credits"]["total"] == "1.3"


async def test_the_first_bound_writer_pins_a_fresh_id(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    """t1's usage pins int-fresh to t1: t2 can neither register it nor add to
    it, t1 can do both, and an admin still decides where it goes."""
    _, t1 = await new_key(db, "ingest", "t1")
    _, t2 = await new_key(db, "ingest", "t2")
    await data(api, STREAM, {"i": "int-fresh", "x": "st-fresh", "c": "2"}, key=t1)
    await data(api, STREAM, {"i": "int-fresh", "x": "st-fresh-2", "c": "3"}, key=t1)
    for operation, variables in _attempts("int-fresh"):
        variables = (
            {**variables, "t": "t2", "u": "u2-t2"} if "t" in variables else variables
        )
        body = await call(api, operation, variables, key=t2)
        assert _answer(body)[0][1]["code"] == "FORBIDDEN", body
    await data(api, REGISTER, {"i": "int-fresh", "t": "t1", "u": "u1"}, key=t1)
    state = await snapshot(api, admin, "int-fresh")
    assert state["t1"]["credits"] == {"total": "6.3", "records": 5}
    # Admin keys are not bound by pins or owners: they move it, with its usage.
    await data(api, REGISTER, {"i": "int-fresh", "t": "t2", "u": "u2-t2"}, key=admin)
    state = await snapshot(api, admin, "int-fresh")
    assert state["int-fresh"]["tenant"] == {"id": "t2"}
    assert state["t1"]["credits"]["total"] == "1.3"


async def test_unbound_usage_does_not_pin(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    """Usage from an unbound key (webhooks, the worker) pins nothing: the
    tenant whose key registers the id first gets it (first come, first served;
    Corti's interaction ids are UUIDs, never shown to another tenant's key)."""
    await data(api, STREAM, {"i": "int-hook", "x": "st-hook", "c": "4"}, key=admin)
    _, t1 = await new_key(db, "ingest", "t1")
    _, t2 = await new_key(db, "ingest", "t2")
    await data(api, REGISTER, {"i": "int-hook", "t": "t1", "u": "u1"}, key=t1)
    body = await call(api, REGISTER, {"i": "int-hook", "t": "t2", "u": "u2-t2"}, key=t2)
    assert _answer(body)[0][1]["code"] == "FORBIDDEN"
    state = await snapshot(api, admin, "int-hook")
    assert state["int-hook"]["tenant"] == {"id": "t1"}
    assert state["t1"]["credits"]["total"] == "5.3"


async def _bound_batch(db: Database, tenant: str, interaction: str, n: int) -> bool:
    """One record by a key bound to `tenant`; False when refused."""
    usage = UsageIn(
        source=Source.STREAM,
        interaction_id=interaction,
        external_id=f"race-{tenant}-{interaction}-{n}",
        credits=Decimal(1),
    )
    try:
        async with unit_of_work(db) as uow:
            await usage_service.ingest(uow, Principal(Role.INGEST, tenant), [usage])
    except Forbidden:
        return False
    return True


async def test_two_tenants_racing_for_a_fresh_id_pin_it_once(db: Database) -> None:
    """Bound batches of t1 and t2 for the same fresh ids, all at once: each id
    ends up with one tenant's usage only (on PostgreSQL the pinning batch holds
    the interaction's lock exclusively; SQLite serialises writers anyway)."""
    interactions = [f"int-race-{n}" for n in range(8)]
    work = [
        _bound_batch(db, tenant, interaction, n)
        for n in range(3)
        for interaction in interactions
        for tenant in ("t1", "t2")
    ]
    random.Random(13).shuffle(work)
    outcomes = await asyncio.gather(*work)
    assert any(outcomes)
    async with db.read() as session:
        rows = await session.execute(
            select(UsageRecord.interaction_id, UsageRecord.writer_tenant_id).where(
                UsageRecord.interaction_id.in_(interactions)
            )
        )
        writers: dict[str, set[str | None]] = {}
        for interaction, writer in rows:
            writers.setdefault(str(interaction), set()).add(writer)
    assert sorted(writers) == interactions
    assert all(len(tenants) == 1 for tenants in writers.values()), writers
