"""Fixtures for the Corti client and sandbox tests: one sandbox on a real port.

`sandbox` is a session-wide `SandboxServer` (uvicorn in a thread on a free
loopback port); `control` resets it before every test and arms faults;
`corti` is a `CortiClient` pointed at it with millisecond retry delays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from service.corti import CortiClient, PollPolicy, RetryPolicy
from service.sandbox.state import AUDIO_BYTES_PER_SECOND
from service.sandbox.testing import SandboxControl, SandboxServer

TENANT = "base"
FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_retry_after=0.05)
FAST_POLL = PollPolicy(initial_delay=0.05, max_delay=0.2, timeout=10)

MakeCorti = Callable[..., CortiClient]


def audio(seconds: float) -> bytes:
    """Silence of the given length in the sandbox's assumed format."""
    return b"\x00" * int(seconds * AUDIO_BYTES_PER_SECOND)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The Corti sandbox served on 127.0.0.1 and a free port for the session."""
    with SandboxServer() as server:
        yield server


@pytest_asyncio.fixture
async def control(sandbox: SandboxServer) -> AsyncIterator[SandboxControl]:
    """The sandbox's control endpoints, after a reset (fresh ledger, no faults)."""
    control = sandbox.control()
    await control.reset()
    yield control
    await control.aclose()


@pytest.fixture
def make_corti(sandbox: SandboxServer, control: SandboxControl) -> MakeCorti:
    """Build a `CortiClient` for the sandbox; keyword arguments override defaults."""

    def make(**options: Any) -> CortiClient:
        settings: dict[str, Any] = {
            **sandbox.client_options(),
            "tenant_name": TENANT,
            "client_id": "test-client",
            "client_secret": "test-secret",
            "timeout": 5.0,
            "retry": FAST_RETRY,
            "poll": FAST_POLL,
            **options,
        }
        return CortiClient(**settings)

    return make


@pytest_asyncio.fixture
async def corti(make_corti: MakeCorti) -> AsyncIterator[CortiClient]:
    """A `CortiClient` on the (freshly reset) sandbox."""
    async with make_corti() as client:
        yield client


@pytest_asyncio.fixture
async def interaction_id(corti: CortiClient) -> str:
    """A new interaction on the sandbox."""
    created = await corti.create_interaction("encounter-1")
    return created.interaction_id
