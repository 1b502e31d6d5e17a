"""/metrics of `serve --workers 2` (all processes summed) and of the worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from bench import processes
from corti_sandbox.testing import SandboxControl, SandboxServer
from service.db.session import Database
from tests.fixtures.app import free_port, make_key
from tests.fixtures.database import BACKEND
from tests.fixtures.seed import REGISTER
from tests.ops.metrics_text import Scrape
from tests.worker.helpers import DOCUMENT

pytestmark = pytest.mark.asyncio(loop_scope="session")

REQUESTS = 40


async def test_serve_workers_metrics_cover_every_process(
    database_url: str, tmp_path: Path
) -> None:
    env = processes.environment(
        DATABASE_URL=database_url, DATABASE_POOL_SIZE="3", DATABASE_MAX_OVERFLOW="2"
    )
    async with processes.serve(env, tmp_path / "serve.log", workers=2) as api:
        assert api.url is not None
        for _ in range(REQUESTS):
            # A new connection each time, so both processes take some.
            async with httpx.AsyncClient(base_url=api.url) as http:
                assert (await http.get("/healthz")).status_code == 200
        counts = set()
        for _ in range(6):
            async with httpx.AsyncClient(base_url=api.url) as http:
                metrics = Scrape((await http.get("/metrics")).text)
            counts.add(
                metrics.value(
                    "ledger_http_request_duration_seconds_count", route="/healthz"
                )
            )
            # Each process's pool has its capacity in the sum: on PostgreSQL
            # DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW each.
            capacity = metrics.value("ledger_db_pool_capacity")
            if BACKEND == "postgresql":
                assert capacity == 2 * (3 + 2)
            else:
                assert capacity >= 2
    # Every scrape, whichever process answered it, saw all the requests
    # (those of the readiness wait included).
    assert len(counts) == 1
    assert counts.pop() >= REQUESTS


async def test_worker_metrics_port(
    database_url: str,
    db: Database,
    sandbox: SandboxServer,
    control: SandboxControl,
    tmp_path: Path,
) -> None:
    env = processes.environment(
        DATABASE_URL=database_url,
        WORKER_POLL_SECONDS="0.05",
        **sandbox.environment(),
    )
    key = await make_key(db, "admin")
    port = free_port()
    async with (
        processes.worker(env, tmp_path / "worker.log", metrics_port=port) as worker,
        processes.serve(env, tmp_path / "serve.log") as api,
        httpx.AsyncClient(base_url=api.url or "", timeout=30) as http,
    ):
        headers = {"Authorization": f"Bearer {key}"}
        body = await http.post(
            "/graphql",
            json={
                "query": REGISTER,
                "variables": {"i": "int-w", "t": "t1", "u": "u1"},
            },
            headers=headers,
        )
        assert "errors" not in body.json(), body.json()
        await control.reset()
        # The sandbox knows no interaction int-w: the job fails for good (404).
        body = await http.post(
            "/graphql",
            json={
                "query": DOCUMENT,
                "variables": {
                    "in": {
                        "interactionId": "int-w",
                        "templateKey": "soap",
                        "context": ["Cough."],
                    }
                },
            },
            headers=headers,
        )
        assert "errors" not in body.json(), body.json()
        url = f"{worker.url}/metrics"
        async with httpx.AsyncClient(timeout=5) as scraper:
            for _ in range(200):
                metrics = Scrape((await scraper.get(url)).text)
                failed = metrics.value(
                    "ledger_job_attempts_total",
                    kind="requestDocument",
                    outcome="failed",
                )
                if failed:
                    break
                await asyncio.sleep(0.05)
            assert failed == 1, worker.output()
            assert metrics.value("ledger_database_up") == 1
            assert (
                metrics.value(
                    "ledger_corti_requests_total",
                    operation="POST /v2/interactions/{id}/documents/",
                    status="404",
                )
                == 1
            )
            assert (await scraper.get(f"{worker.url}/other")).status_code == 404
