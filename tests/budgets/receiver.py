"""A webhook receiver on a real loopback port: records every request and
answers with the statuses it is told (or hangs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fixtures.app import free_port


@dataclass
class Received:
    """One request as it arrived."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """The receiver's URL, what it got, and what it answers next."""

    url: str
    received: list[Received] = field(default_factory=list)
    # Statuses to answer, in order; afterwards `then`. 0: hang until the timeout.
    answers: list[int] = field(default_factory=list)
    then: int = 200
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body()))
        self.arrived.set()
        status = self.answers.pop(0) if self.answers else self.then
        if status == 0:
            await asyncio.sleep(3600)
        return Response(status_code=status)

    async def wait_for(self, count: int) -> None:
        """Until `count` requests arrived (callers bound it with asyncio.timeout)."""
        while len(self.received) < count:
            self.arrived.clear()
            await self.arrived.wait()


@asynccontextmanager
async def receiver(port: int | None = None) -> AsyncIterator[Receiver]:
    """A running receiver at http://127.0.0.1:<port>/hook (a free port unless given)."""
    port = port or free_port()
    target = Receiver(url=f"http://127.0.0.1:{port}/hook")
    app = Starlette(routes=[Route("/hook", target.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield target
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
