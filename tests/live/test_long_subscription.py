"""A subscription that stays open keeps nothing of the events it delivered."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from service.live import running_feeds
from tests.fixtures.app import GraphQLClient, Server
from tests.live.client import bearer, socket, subscribed
from tests.live.test_feed import event
from tests.live.test_subscription import register

pytestmark = pytest.mark.asyncio

RECORDS = """
subscription($t: ID!) { usageRecorded(tenantId: $t) { id source externalId credits } }
"""
CHUNK = 100


async def test_events_are_not_kept_by_an_open_subscription(
    server: Server, gql: GraphQLClient, admin_key: str
) -> None:
    # graphql-core 3.3.2 runs each event on a shallow copy of the subscription's
    # executor: without service.graphql.schema.Executor, every event left its
    # collected sub-fields (about 1 KB) in a memo shared by the subscription.
    await register(gql)
    async with socket(server.url, bearer(admin_key)) as ws:
        await ws.subscribe(RECORDS, {"t": "t1"})
        await subscribed("t1")

        async def pump(count: int) -> None:
            for start in range(0, count, CHUNK):
                for feed in running_feeds():
                    feed.deliver(event(n) for n in range(start, start + CHUNK))
                for _ in range(CHUNK):
                    message = await ws.receive(seconds=10.0)
                    assert message["type"] == "next", message

        await pump(300)  # warm-up: caches, buffers
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await pump(2000)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert (after - before) / 2000 < 100, f"{(after - before) / 2000:.0f} B per event"
