"""Fixtures for the attack tests: a leak-checking HTTP client, keys, log capture."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from service.logs import JsonFormatter
from tests.auth.helpers import check_no_leak
from tests.fixtures.app import Server
from tests.fixtures.database import BACKEND, POSTGRES_URL


@pytest_asyncio.fixture
async def api(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for the session server; every response is leak-checked."""
    async with httpx.AsyncClient(
        base_url=server.url,
        timeout=60,
        event_hooks={"response": [check_no_leak]},
    ) as http:
        yield http


@pytest_asyncio.fixture
async def bare_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: no tables, so every statement fails."""
    if BACKEND == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}"
        return
    name = f"ledger_bare_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_dsn = (
        POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    )
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES_URL}/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The formatted JSON line (message, extras, traceback) plus the raw
        # arguments, in case a formatter elsewhere printed them differently.
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log record of every logger, at DEBUG, while the test runs."""
    handler = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
