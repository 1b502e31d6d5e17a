"""OpenTelemetry: one trace from requestDocument through the worker's Corti call.

`serve` and `worker` run as processes exporting OTLP/HTTP to a receiver in
this test (a Starlette route decoding ExportTraceServiceRequest); the Corti
sandbox stands in for Corti. The mutation carries a `traceparent`, so the
whole trace must continue that trace id.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import processes
from corti_sandbox.testing import SandboxControl, SandboxServer
from service.config import Settings
from service.db.session import Database
from tests.fixtures.app import make_key, start_server, stop_server
from tests.worker.helpers import CREATE, DOCUMENT, JOB


class Receiver:
    """Spans received over OTLP/HTTP, as plain dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.url = ""

    async def traces(self, request: Request) -> Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        for resource in message.resource_spans:
            attributes = {
                a.key: a.value.string_value for a in resource.resource.attributes
            }
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        {
                            "name": span.name,
                            "trace": span.trace_id.hex(),
                            "id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "role": attributes.get("process.role"),
                            "attributes": {
                                a.key: a.value.string_value or a.value.int_value
                                for a in span.attributes
                            },
                        }
                    )
        return Response(
            ExportTraceServiceResponse().SerializeToString(),
            media_type="application/x-protobuf",
        )


@pytest_asyncio.fixture
async def receiver(database_url: str) -> AsyncIterator[Receiver]:
    sink = Receiver()
    app = Starlette(routes=[Route("/v1/traces", sink.traces, methods=["POST"])])
    settings = Settings(database_url=database_url)
    uv, task, url = await start_server(settings, app=app)
    sink.url = url
    yield sink
    await stop_server(uv, task)


async def _job(http: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> Any:
    for _ in range(400):
        body = (
            await http.post(
                "/graphql",
                json={"query": JOB, "variables": {"id": job_id}},
                headers=headers,
            )
        ).json()
        job = body["data"]["job"]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.mark.asyncio(loop_scope="session")
async def test_one_trace_from_the_mutation_through_the_worker(
    database_url: str,
    db: Database,
    sandbox: SandboxServer,
    control: SandboxControl,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    env = processes.environment(
        DATABASE_URL=database_url,
        WORKER_POLL_SECONDS="0.05",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
        **sandbox.environment(),
    )
    key = await make_key(db, "admin")
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        processes.worker(env, tmp_path / "worker.log") as worker,
        processes.serve(env, tmp_path / "serve.log") as api,
        httpx.AsyncClient(base_url=api.url or "", timeout=30) as http,
    ):
        created = await http.post(
            "/graphql",
            json={
                "query": CREATE,
                "variables": {
                    "in": {
                        "tenantId": "t1",
                        "userId": "u1",
                        "encounterIdentifier": "visit-1",
                    }
                },
            },
            headers=headers,
        )
        assert created.json().get("data"), (created.json(), api.output())
        job = await _job(
            http, headers, created.json()["data"]["createInteraction"]["id"]
        )
        assert job["status"] == "SUCCEEDED", (job, worker.output())
        interaction = job["interaction"]["id"]
        trace_id = secrets.token_hex(16)
        traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
        queued = await http.post(
            "/graphql",
            json={
                "query": DOCUMENT,
                "operationName": None,
                "variables": {
                    "in": {
                        "interactionId": interaction,
                        "templateKey": "soap",
                        "context": ["Cough."],
                    }
                },
            },
            headers={**headers, "traceparent": traceparent},
        )
        job = await _job(http, headers, queued.json()["data"]["requestDocument"]["id"])
        assert job["status"] == "SUCCEEDED", job

        def ours() -> list[dict[str, Any]]:
            return [s for s in receiver.spans if s["trace"] == trace_id]

        for _ in range(200):
            if any(
                s["role"] == "worker" and "documents" in str(s["attributes"])
                for s in ours()
            ):
                break
            await asyncio.sleep(0.05)
    spans = ours()
    by_id = {s["id"]: s for s in spans}

    def ancestors(span: dict[str, Any]) -> list[str]:
        names = []
        while span["parent"] in by_id:
            span = by_id[span["parent"]]
            names.append(span["name"])
        return names

    api_spans = [s for s in spans if s["role"] == "api"]
    operation = [s for s in api_spans if s["name"].startswith("graphql.mutation")]
    assert len(operation) == 1, [s["name"] for s in spans]
    assert operation[0]["attributes"]["graphql.operation.type"] == "mutation"
    # One span per operation, none per field.
    assert not [
        s for s in api_spans if s["name"].startswith("graphql.") and s not in operation
    ]
    assert any(s["attributes"].get("db.system") for s in api_spans), "no SQL spans"
    # The API's outermost span continues the caller's traceparent.
    assert (
        operation[0]["parent"] in by_id or operation[0]["parent"] == traceparent[36:52]
    )
    job_spans = [s for s in spans if s["name"] == "job requestDocument"]
    assert len(job_spans) == 1, [s["name"] for s in spans]
    assert operation[0]["name"] in ancestors(job_spans[0])
    corti = [
        s
        for s in spans
        if (
            s["role"] == "worker"
            and "/documents/" in str(s["attributes"].get("url.full", ""))
        )
        or "/documents/" in str(s["attributes"].get("http.url", ""))
    ]
    assert corti, [(s["name"], s["attributes"]) for s in spans if s["role"] == "worker"]
    assert "job requestDocument" in ancestors(corti[0])
    assert any(s["attributes"].get("db.system") for s in spans if s["role"] == "worker")
    del control


def test_tracing_off_loads_nothing_of_the_sdk(database_url: str) -> None:
    code = (
        "import sys\n"
        "from service.app import create_app\n"
        "from service.config import Settings\n"
        f"create_app(Settings(database_url={database_url!r}))\n"
        "loaded = [m for m in sys.modules if m.startswith('opentelemetry')]\n"
        "assert not loaded, loaded\n"
    )
    env = processes.environment()
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
