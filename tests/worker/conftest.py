"""Fixtures for job and worker tests: a fast worker (helpers: helpers.py).

The Corti sandbox (tests/fixtures/corti.py) runs on a real loopback port (its
own thread and event loop); the worker runs in-process as an asyncio task with short leases and backoffs, and
the API is the session's uvicorn server (`server`, `gql`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from service.corti import CortiClient
from service.db.session import Database
from service.worker.runner import Worker
from tests.worker.helpers import RunWorker, worker_settings


@pytest.fixture
def corti_options() -> dict[str, Any]:
    """Worker tests' Corti client: its own credentials and a shorter timeout."""
    return {
        "client_id": "worker-test",
        "client_secret": "worker-secret",
        "timeout": 2.0,
    }


@pytest_asyncio.fixture
async def run_worker(
    db: Database, database_url: str, corti: CortiClient
) -> AsyncIterator[RunWorker]:
    """`async with run_worker(**settings) as worker:` runs a worker task."""
    workers: list[tuple[Worker, asyncio.Task[None]]] = []

    @asynccontextmanager
    async def start(
        client: CortiClient | None = None,
        *,
        database: Database | None = None,
        concurrency: int | None = None,
        **overrides: Any,
    ) -> AsyncIterator[Worker]:
        settings = worker_settings(database_url, **overrides)
        worker = Worker(
            database or db,
            client or corti,
            settings,
            concurrency=concurrency,
        )
        task = asyncio.create_task(worker.run())
        workers.append((worker, task))
        try:
            yield worker
        finally:
            worker.stop()
            await asyncio.wait_for(task, 15)

    yield start
    for worker, task in workers:
        if not task.done():
            worker.stop()
            await asyncio.wait_for(task, 15)
