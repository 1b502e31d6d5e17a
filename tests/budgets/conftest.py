"""Fixtures of the budgets tests: a fast in-process worker (helpers: alerting.py).

The worker runs as an asyncio task with short leases and backoffs and a short
webhook timeout, and may send to loopback receivers (tests/budgets/receiver.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest_asyncio

from service.corti import CortiClient
from service.db.session import Database
from service.worker.runner import Worker
from tests.budgets.alerting import WEBHOOK_SETTINGS, RunWorker
from tests.worker.helpers import worker_settings


@pytest_asyncio.fixture
async def run_worker(
    db: Database, database_url: str, corti: CortiClient
) -> AsyncIterator[RunWorker]:
    """`async with run_worker(**settings) as worker:` runs a worker task."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Worker]:
        settings = worker_settings(database_url, **{**WEBHOOK_SETTINGS, **overrides})
        worker = Worker(db, corti, settings)
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await asyncio.wait_for(task, 15)

    yield start
