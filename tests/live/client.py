"""A minimal graphql-transport-ws client for tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from service.live import running_feeds

PROTOCOL = "graphql-transport-ws"
USAGE_RECORDED = """
subscription($t: ID!) {
  usageRecorded(tenantId: $t) {
    id source externalId credits createdAt interactionId
    interaction { id tenant { id } user { id } }
  }
}"""


def ws_url(http_url: str) -> str:
    """ws://host:port/graphql for an http://host:port server."""
    return http_url.replace("http://", "ws://", 1) + "/graphql"


class Socket:
    """One graphql-transport-ws connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def subscribe(self, query: str, variables: dict[str, Any]) -> str:
        """Start an operation; returns its id."""
        self.next_id += 1
        op_id = str(self.next_id)
        await self.ws.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables},
                }
            )
        )
        return op_id

    async def receive(self, seconds: float = 1.0) -> dict[str, Any]:
        """The next message that is not a ping/pong, within `seconds`."""
        async with asyncio.timeout(seconds):
            while True:
                message: dict[str, Any] = json.loads(await self.ws.recv())
                if message["type"] not in ("ping", "pong"):
                    return message

    async def nothing_within(self, seconds: float) -> bool:
        """True if no message arrives within `seconds`."""
        try:
            message = await self.receive(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected message {message}")


@asynccontextmanager
async def socket(
    http_url: str, payload: dict[str, Any] | None
) -> AsyncIterator[Socket]:
    """A connection that sent connection_init and got connection_ack."""
    async with connect(ws_url(http_url), subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        init: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            init["payload"] = payload
        await ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        yield Socket(ws)


def bearer(key: str) -> dict[str, str]:
    """The connection_init payload for a key."""
    return {"Authorization": f"Bearer {key}"}


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until `condition()` holds (it reads state the server owns)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.005)


async def subscribed(tenant: str, count: int = 1) -> None:
    """Wait until this process's feeds hold `count` subscriptions of `tenant`."""
    await until(
        lambda: sum(f.subscriber_count(tenant) for f in running_feeds()) >= count
    )
