"""The migrations build exactly the tables the models describe."""

from __future__ import annotations

import asyncio

import pytest

from service.migrate import check


@pytest.mark.asyncio
async def test_alembic_check_is_clean(database_url: str) -> None:
    # alembic's env.py runs its own event loop, so it runs in a thread here.
    await asyncio.to_thread(check, database_url)
