"""Fixtures for the Corti client and sandbox tests (the sandbox and clients
themselves come from tests/fixtures/corti.py)."""

from __future__ import annotations

import pytest_asyncio

from service.corti import CortiClient


@pytest_asyncio.fixture
async def interaction_id(corti: CortiClient) -> str:
    """A new interaction on the sandbox."""
    created = await corti.create_interaction("encounter-1")
    return created.interaction_id
