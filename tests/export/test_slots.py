"""Export slots: at most 2 per key, and a reader that stops reading loses its slot."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.requests import Request

from service.db.session import Database
from service.export.routes import Exports
from service.state import AppState
from tests.auth.helpers import new_key
from tests.fixtures.app import Server

pytestmark = pytest.mark.asyncio


def _scope(key: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/export/usage.csv",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {key}".encode())],
        "asgi": {"spec_version": "2.4"},
    }


async def _disconnected() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def _drop(message: MutableMapping[str, Any]) -> None:
    return None


async def test_one_key_cannot_take_every_slot(server: Server, db: Database) -> None:
    _, greedy = await new_key(db, "reader")
    _, other = await new_key(db, "reader")
    exports = Exports(AppState(server.settings, db=db), max_concurrent=4)
    held = [await exports.usage_csv(Request(_scope(greedy))) for _ in range(2)]
    assert [r.status_code for r in held] == [200, 200]
    refused = await exports.usage_csv(Request(_scope(greedy)))
    assert refused.status_code == 429
    assert b"EXPORTS_BUSY" in bytes(refused.body)
    assert int(refused.headers["retry-after"]) >= 1
    # Another tenant's key still gets a slot.
    assert (await exports.usage_csv(Request(_scope(other)))).status_code == 200
    # When one of the greedy key's exports ends, it may start another.
    await held[0](_scope(greedy), _disconnected, _drop)
    assert (await exports.usage_csv(Request(_scope(greedy)))).status_code == 200


async def test_a_reader_that_stops_reading_loses_its_slot(
    server: Server, db: Database
) -> None:
    _, key = await new_key(db, "reader")
    exports = Exports(AppState(server.settings, db=db), max_concurrent=1)
    exports.send_timeout = 0.2
    stalled = await exports.usage_csv(Request(_scope(key)))
    never = asyncio.Event()

    async def blocked_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            await never.wait()  # the client's window is full: send never returns

    async def connected() -> dict[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}

    async with asyncio.timeout(30):
        await stalled(_scope(key), connected, blocked_send)
    _, other = await new_key(db, "reader")
    assert (await exports.usage_csv(Request(_scope(other)))).status_code == 200
