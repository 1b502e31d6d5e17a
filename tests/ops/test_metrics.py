"""GET /metrics: the contract's series, counters that follow the traffic, promtool.

Counters are process-wide and the server runs in the test process, so each
test compares a scrape after its traffic with one before it.
"""

from __future__ import annotations

import asyncio
import os
import shutil

import httpx
import pytest

from service.config import Settings
from service.db.session import Database
from tests.fixtures.app import GraphQLClient, Server, start_server, stop_server
from tests.fixtures.operations import TENANT, TRANSCRIPT
from tests.fixtures.seed import INGEST, REGISTER
from tests.live.client import USAGE_RECORDED, bearer, socket, subscribed
from tests.ops.metrics_text import Scrape, promtool_check
from tests.worker.helpers import (
    RunWorker,
    new_interaction,
    request_document,
    wait_for_job,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONTRACT = {
    "ledger_usage_records": ("counter", {"source", "outcome"}),
    "ledger_credits_recorded": ("counter", {"source"}),
    "ledger_graphql_operations": ("counter", {"type", "outcome"}),
    "ledger_graphql_duration_seconds": ("histogram", {"type"}),
    "ledger_jobs": ("gauge", {"kind", "status"}),
    "ledger_job_attempts": ("counter", {"kind", "outcome"}),
    "ledger_corti_requests": ("counter", {"operation", "status"}),
    "ledger_webhook_deliveries": ("counter", {"outcome"}),
}


async def scrape(http: httpx.AsyncClient) -> Scrape:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def test_metrics_without_a_key_has_every_contract_series(
    server: Server, gql: GraphQLClient
) -> None:
    await gql.data(TENANT, {"t": "t1"})  # so labelled series have samples
    metrics = await scrape(gql.http)  # no Authorization header
    for name, (kind, labels) in CONTRACT.items():
        family = metrics.families.get(name)
        assert family is not None, f"{name} missing"
        assert family.type == kind, (name, family.type)
        if family.samples:
            assert metrics.label_names(name) == labels, name
    for name in (
        "ledger_http_request_duration_seconds",
        "ledger_db_connections_in_use",
        "ledger_live_subscribers",
        "ledger_job_oldest_queued_age_seconds",
        "ledger_database_up",
    ):
        assert name in metrics.families, name
    assert metrics.value("ledger_database_up") == 1
    assert metrics.value("ledger_jobs", kind="requestDocument", status="queued") == 0


async def test_record_counters_follow_the_traffic(gql: GraphQLClient) -> None:
    before = await scrape(gql.http)
    await gql.data(REGISTER, {"i": "int-m", "t": "t1", "u": "u1"})
    tr = {"i": "int-m", "x": "tr-1", "c": "0.25"}
    await gql.data(TRANSCRIPT, tr)  # accepted
    await gql.data(TRANSCRIPT, tr)  # duplicate
    conflict = await gql(TRANSCRIPT, {**tr, "c": "0.5"})
    assert conflict["errors"][0]["extensions"]["code"] == "CONFLICT"
    rejected = await gql(TRANSCRIPT, {**tr, "x": "tr-2", "c": "-1"})
    assert rejected["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    batch = [
        {
            "source": "STREAM",
            "interactionId": "int-m",
            "externalId": f"s-{n}",
            "credits": "0.1",
        }
        for n in range(3)
    ]
    await gql.data(INGEST, {"r": batch})
    await gql.data(INGEST, {"r": batch[:2]})  # two redeliveries
    bad = [*batch, {**batch[0], "externalId": "s-9", "credits": "-1"}]
    refused = await gql(INGEST, {"r": bad})
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    invalid = await gql('{ tenant(id: "t1") { nope } }')
    assert invalid["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    after = await scrape(gql.http)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    records = "ledger_usage_records_total"
    assert delta(records, source="TRANSCRIPT", outcome="accepted") == 1
    assert delta(records, source="TRANSCRIPT", outcome="duplicate") == 1
    assert delta(records, source="TRANSCRIPT", outcome="conflict") == 1
    assert delta(records, source="TRANSCRIPT", outcome="rejected") == 1
    assert delta(records, source="STREAM", outcome="accepted") == 3
    assert delta(records, source="STREAM", outcome="duplicate") == 2
    assert delta(records, source="STREAM", outcome="conflict") == 0
    # A refused batch counts each of its records.
    assert delta(records, source="STREAM", outcome="rejected") == 4
    credits = "ledger_credits_recorded_total"
    # A float counter: after the rest of the suite's credits, only approximately.
    assert delta(credits, source="TRANSCRIPT") == pytest.approx(0.25, abs=1e-3)
    assert delta(credits, source="STREAM") == pytest.approx(0.3, abs=1e-3)
    ops = "ledger_graphql_operations_total"
    assert delta(ops, type="mutation", outcome="ok") == 5
    assert delta(ops, type="mutation", outcome="error") == 3
    assert delta(ops, type="query", outcome="error") == 1
    assert delta("ledger_graphql_duration_seconds_count", type="mutation") == 8
    route = {"route": "/graphql", "method": "POST", "status": "200"}
    assert delta("ledger_http_request_duration_seconds_count", **route) == 9
    assert delta("ledger_http_request_duration_seconds_count", route="other") == 0


async def test_subscriptions_and_live_subscribers(
    server: Server, gql: GraphQLClient, admin_key: str
) -> None:
    before = await scrape(gql.http)
    async with socket(server.url, bearer(admin_key)) as ws:
        await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
        await subscribed("t1")
        during = await scrape(gql.http)
    assert during.value("ledger_live_subscribers") == (
        before.value("ledger_live_subscribers") + 1
    )
    # A subscription is counted (and timed) when it ends.
    name = "ledger_graphql_operations_total"
    async with asyncio.timeout(5):
        while True:
            now = await scrape(gql.http)
            if now.value(name, type="subscription") > before.value(
                name, type="subscription"
            ):
                break
            await asyncio.sleep(0.02)
    after = await scrape(gql.http)
    assert after.value("ledger_live_subscribers") == before.value(
        "ledger_live_subscribers"
    )


async def test_unknown_paths_share_one_route_label(gql: GraphQLClient) -> None:
    before = await scrape(gql.http)
    for n in range(3):
        assert (await gql.http.get(f"/no/such/{n}")).status_code == 404
    after = await scrape(gql.http)
    name = "ledger_http_request_duration_seconds_count"
    assert after.value(name, route="other") - before.value(name, route="other") == 3
    assert "/no/such" not in after.text


async def test_job_and_corti_counters(
    gql: GraphQLClient, run_worker: RunWorker
) -> None:
    async with run_worker():
        interaction = await new_interaction(gql)
    before = await scrape(gql.http)
    job_id = await request_document(gql, interaction)
    queued = await scrape(gql.http)
    assert queued.value("ledger_jobs", kind="requestDocument", status="queued") == 1
    async with run_worker():
        job = await wait_for_job(gql, job_id)
    assert job["status"] == "SUCCEEDED", job
    after = await scrape(gql.http)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert (
        delta("ledger_job_attempts_total", kind="requestDocument", outcome="succeeded")
        == 1
    )
    requests = "ledger_corti_requests_total"
    operation = "POST /v2/interactions/{id}/documents/"
    assert delta(requests, operation=operation, status="201") == 1
    token = "POST /realms/{id}/protocol/openid-connect/token"
    assert after.value(requests, operation=token, status="200") >= 1
    assert delta("ledger_usage_records_total", source="DOCUMENT") == 1
    assert after.value("ledger_jobs", kind="requestDocument") == 0
    for family in after.families.values():
        for sample in family.samples:
            assert interaction not in sample.labels.values()
            assert "t1" not in sample.labels.values()


async def test_promtool_accepts_the_output(gql: GraphQLClient) -> None:
    if shutil.which("promtool") is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    await gql.data(TENANT, {"t": "t1"})
    response = await gql.http.get("/metrics")
    result = promtool_check(response.text)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_metrics_can_be_turned_off(database_url: str, db: Database) -> None:
    settings = Settings(database_url=database_url, metrics_enabled=False)
    uv, task, url = await start_server(settings)
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/metrics")).status_code == 404
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await stop_server(uv, task)
