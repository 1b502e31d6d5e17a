"""usageRecorded over graphql-transport-ws: pushed on commit, tenant-scoped, authenticated."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from service.db.session import Database
from tests.fixtures.app import GraphQLClient, Server, make_key
from tests.fixtures.operations import INGEST, REGISTER, TRANSCRIPT
from tests.live.client import USAGE_RECORDED, bearer, socket, subscribed

pytestmark = pytest.mark.asyncio


async def register(gql: GraphQLClient) -> None:
    await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
    await gql.data(REGISTER, {"i": "int-2", "t": "t2", "u": "u2"})


class TestUsageRecorded:
    async def test_delivered_once_committed(
        self, server: Server, gql: GraphQLClient, admin_key: str
    ) -> None:
        await register(gql)
        async with socket(server.url, bearer(admin_key)) as ws:
            op = await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
            await subscribed("t1")
            written = await gql.data(
                TRANSCRIPT, {"i": "int-1", "x": "tr-1", "c": "0.1"}
            )
            # Pushed on commit (NOTIFY, or in process on SQLite); nothing polls, so
            # the generous bound is for a loaded machine, not a latency target.
            message = await ws.receive(seconds=10.0)
        assert message["type"] == "next"
        assert message["id"] == op
        record = message["payload"]["data"]["usageRecorded"]
        assert record["id"] == written["recordTranscriptUsage"]["id"]
        assert record["source"] == "TRANSCRIPT"
        assert record["externalId"] == "tr-1"
        assert record["credits"] == "0.1"
        assert record["interaction"] == {
            "id": "int-1",
            "tenant": {"id": "t1"},
            "user": {"id": "u1"},
        }

    async def test_tenant_scoped(
        self, server: Server, gql: GraphQLClient, db: Database
    ) -> None:
        await register(gql)
        key = await make_key(db, "reader", "t1")
        async with socket(server.url, bearer(key)) as ws:
            await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
            await subscribed("t1")
            await gql.data(TRANSCRIPT, {"i": "int-2", "x": "tr-other", "c": "1"})
            await gql.data(TRANSCRIPT, {"i": "int-1", "x": "tr-mine", "c": "2"})
            message = await ws.receive()
            assert (
                message["payload"]["data"]["usageRecorded"]["externalId"] == "tr-mine"
            )
            assert await ws.nothing_within(0.2)

            other = await ws.subscribe(USAGE_RECORDED, {"t": "t2"})
            refused = await ws.receive()
        assert refused["id"] == other
        assert refused["type"] in ("next", "error")
        errors = (
            refused["payload"]["errors"]
            if refused["type"] == "next"
            else refused["payload"]
        )
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"

    async def test_ingest_key_cannot_subscribe(
        self, server: Server, db: Database
    ) -> None:
        key = await make_key(db, "ingest")
        async with socket(server.url, bearer(key)) as ws:
            await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
            message = await ws.receive()
        errors = (
            message["payload"]["errors"]
            if message["type"] == "next"
            else message["payload"]
        )
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"

    @pytest.mark.parametrize(
        "payload",
        [
            None,
            {},
            {"Authorization": "Bearer cul_bad_key"},
            {"Authorization": "Basic abc"},
        ],
        ids=["no-payload", "no-key", "bad-key", "not-bearer"],
    )
    async def test_bad_key_is_refused(
        self, server: Server, payload: dict[str, str] | None
    ) -> None:
        with pytest.raises(ConnectionClosed) as closed:
            async with socket(server.url, payload):
                pass
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403

    async def test_only_new_records_are_announced(
        self, server: Server, gql: GraphQLClient, admin_key: str
    ) -> None:
        await register(gql)
        await gql.data(TRANSCRIPT, {"i": "int-1", "x": "tr-old", "c": "1"})
        async with socket(server.url, bearer(admin_key)) as ws:
            await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
            await subscribed("t1")
            await gql.data(TRANSCRIPT, {"i": "int-1", "x": "tr-old", "c": "1"})
            records = [
                {"source": "DOCUMENT", "interactionId": "int-1", "externalId": "d1", "credits": "1"},
                {"source": "TRANSCRIPT", "interactionId": "int-1", "externalId": "tr-old", "credits": "1"},
                {"source": "DOCUMENT", "interactionId": "int-1", "externalId": "d2", "credits": "2"},
                {"source": "DOCUMENT", "interactionId": "int-1", "externalId": "d1", "credits": "1"},
                {"source": "STREAM", "interactionId": "late", "externalId": "s1", "credits": "1"},
            ]  # fmt: skip
            result = await gql.data(INGEST, {"r": records})
            assert result["ingestUsage"] == {"accepted": 3, "duplicates": 2}
            got = [
                (await ws.receive())["payload"]["data"]["usageRecorded"]["externalId"]
                for _ in range(2)
            ]
            assert await ws.nothing_within(0.2)
        assert sorted(got) == ["d1", "d2"]
