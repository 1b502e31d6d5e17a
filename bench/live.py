"""Live subscribers (graphql-transport-ws) pinned to each API process.

With `serve --workers N` the processes accept from one shared socket, so which
process serves a websocket is the kernel's choice. `serving_pid` reads it from
/proc (the server end of the connection is a socket inode held by exactly one
process), and `connect_per_process` opens sockets until every process serves
its share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"
USAGE_RECORDED = """
subscription Live($t: ID!) {
  usageRecorded(tenantId: $t) { id source externalId credits tenantId }
}"""


def _tcp_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server end of 127.0.0.1:client_port -> :server_port."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    parts = line.split()
                    local, remote, inode = parts[1], parts[2], parts[9]
                    if (
                        int(local.rsplit(":", 1)[1], 16) == server_port
                        and int(remote.rsplit(":", 1)[1], 16) == client_port
                    ):
                        return inode
        except OSError:
            continue
    return None


def serving_pid(server_port: int, client_port: int, pids: Sequence[int]) -> int | None:
    """Which of `pids` holds the server end of the connection from `client_port`."""
    inode = _tcp_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


class Subscriber:
    """One websocket with a `usageRecorded` subscription per tenant."""

    def __init__(self, ws_url: str, key: str, tenants: Sequence[str]) -> None:
        self.ws_url = ws_url
        self.key = key
        self.tenants = list(tenants)
        self.seen: Counter[tuple[str, str]] = Counter()
        self.first_seen: dict[tuple[str, str], float] = {}  # time.time()
        self.errors: list[Any] = []
        self.closed: str | None = None
        self.pid: int | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def client_port(self) -> int:
        """The local port of the websocket."""
        assert self._ws is not None
        port: int = self._ws.local_address[1]
        return port

    async def start(self) -> None:
        """Connect, authenticate and subscribe to every tenant."""
        ws = self._ws = await connect(
            self.ws_url,
            subprotocols=[PROTOCOL],  # type: ignore[list-item]
            open_timeout=10,
        )
        await ws.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"Authorization": f"Bearer {self.key}"},
                }
            )
        )
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        for n, tenant in enumerate(self.tenants):
            await ws.send(
                json.dumps(
                    {
                        "id": str(n),
                        "type": "subscribe",
                        "payload": {
                            "query": USAGE_RECORDED,
                            "variables": {"t": tenant},
                        },
                    }
                )
            )
        self._reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        self.errors.append(payload["errors"])
                    record = (payload.get("data") or {}).get("usageRecorded")
                    if record:
                        key = (record["source"], record["externalId"])
                        self.seen[key] += 1
                        self.first_seen.setdefault(key, time.time())
                elif kind in ("error", "complete"):
                    self.errors.append(message)
        except ConnectionClosed as closed:
            self.closed = f"{closed.rcvd.code if closed.rcvd else '?'} {closed}"
        else:
            self.closed = "closed by the server"

    async def close(self) -> None:
        """Close the websocket."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)


async def connect_per_process(
    ws_url: str,
    key: str,
    tenants: Sequence[str],
    *,
    server_port: int,
    pids: Sequence[int],
    per_process: int = 1,
    tries: int = 60,
) -> list[Subscriber]:
    """Subscribers until each of `pids` serves `per_process` of them."""
    kept: list[Subscriber] = []
    counts: Counter[int] = Counter()
    for _ in range(tries):
        if all(counts[pid] >= per_process for pid in pids):
            return kept
        subscriber = Subscriber(ws_url, key, tenants)
        await subscriber.start()
        pid = serving_pid(server_port, subscriber.client_port, pids)
        if pid is None or counts[pid] >= per_process:
            await subscriber.close()
            continue
        subscriber.pid = pid
        counts[pid] += 1
        kept.append(subscriber)
    for subscriber in kept:
        await subscriber.close()
    raise RuntimeError(f"could not place {per_process} subscriber(s) on each of {pids}")
