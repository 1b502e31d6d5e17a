"""Webhook endpoints: validation, private addresses, the secret shown once."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from service.db.session import Database
from service.webhooks.models import WebhookEndpoint
from tests.budgets.ops import CREATE_ENDPOINT, DELETE_ENDPOINT, ENDPOINT, codes
from tests.budgets.test_budgets import usage
from tests.fixtures.app import GraphQLClient, make_key

pytestmark = pytest.mark.asyncio

PUBLIC = "https://93.184.215.14/hooks/budget"  # an IP literal: nothing resolves


async def endpoints(db: Database) -> int:
    async with db.read() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(WebhookEndpoint))
            ).scalar_one()
        )


class TestCreate:
    async def test_secret_only_in_the_create_answer(self, gql: GraphQLClient) -> None:
        created = (await gql.data(CREATE_ENDPOINT, {"i": {"url": PUBLIC}}))[
            "createWebhookEndpoint"
        ]
        assert created["eventTypes"] == ["budget.threshold_crossed"]
        assert created["tenant"] is None
        assert created["disabled"] is False
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
        read = (await gql.data(ENDPOINT, {"id": created["id"]}))["webhookEndpoint"]
        assert read["secret"] is None
        assert read["url"] == PUBLIC
        assert read["deliveries"] == []

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://93.184.215.14/x",
            "not a url",
            "http://",
            "https://user:pw@93.184.215.14/",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://10.1.2.3/hook",
            "http://192.168.0.10/hook",
            "http://172.16.5.5/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fe80::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://0.0.0.0/hook",
        ],
    )
    async def test_refused_urls_write_nothing(
        self, gql: GraphQLClient, db: Database, url: str
    ) -> None:
        body = await gql(CREATE_ENDPOINT, {"i": {"url": url}})
        assert codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == "input.url"
        assert await endpoints(db) == 0

    async def test_bad_tenant_or_event_type(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        for given in (
            {"url": PUBLIC, "tenantId": "nobody"},
            {"url": PUBLIC, "eventTypes": ["budget.nope"]},
            {"url": PUBLIC, "eventTypes": []},
        ):
            assert codes(await gql(CREATE_ENDPOINT, {"i": given})) == ["BAD_USER_INPUT"]
        assert await endpoints(db) == 0

    async def test_roles(self, gql: GraphQLClient, db: Database) -> None:
        await usage(gql, "i-1", "t1", "u1")
        await usage(gql, "i-2", "t2", "u2")
        for role in ("reader", "ingest"):
            key = await make_key(db, role)
            assert codes(
                await gql(CREATE_ENDPOINT, {"i": {"url": PUBLIC}}, key=key)
            ) == ["FORBIDDEN"]
        bound = await make_key(db, "admin", "t1")
        other = {"url": PUBLIC, "tenantId": "t2"}
        assert codes(await gql(CREATE_ENDPOINT, {"i": other}, key=bound)) == [
            "FORBIDDEN"
        ]
        assert await endpoints(db) == 0
        # a bound key's endpoint without tenantId is its own tenant's
        own = (await gql.data(CREATE_ENDPOINT, {"i": {"url": PUBLIC}}, key=bound))[
            "createWebhookEndpoint"
        ]
        assert own["tenant"] == {"id": "t1"}
        every = (await gql.data(CREATE_ENDPOINT, {"i": {"url": PUBLIC}}))[
            "createWebhookEndpoint"
        ]
        assert (await gql.data(ENDPOINT, {"id": every["id"]}, key=bound))[
            "webhookEndpoint"
        ] is None
        assert (await gql.data(DELETE_ENDPOINT, {"id": every["id"]}, key=bound))[
            "deleteWebhookEndpoint"
        ] is False
        assert (await gql.data(DELETE_ENDPOINT, {"id": own["id"]}, key=bound))[
            "deleteWebhookEndpoint"
        ] is True
        assert await endpoints(db) == 1
