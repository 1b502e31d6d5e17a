"""Run the sandbox on a free loopback port in a background thread (for tests).

    with SandboxServer(SandboxConfig(token_expires_in=60)) as sandbox:
        client = CortiClient(**sandbox.client_options(), ...)

The server has its own event loop in its own thread, so it keeps answering
while a test's loop is blocked or busy, and every call crosses a real socket.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import httpx
import uvicorn

from corti_sandbox.app import create_sandbox_app
from corti_sandbox.state import SandboxConfig, SandboxState


class SandboxServer:
    """The sandbox served by uvicorn on 127.0.0.1 and a free port."""

    def __init__(
        self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1"
    ) -> None:
        self.app = create_sandbox_app(config)
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SandboxState:
        """The live sandbox state (read it only while no call is running)."""
        state: SandboxState = self.app.state.sandbox
        return state

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The REST base (`CORTI_BASE_URL`)."""
        return f"{self.url}/v2"

    @property
    def wss_url(self) -> str:
        """The websocket base (`CORTI_WSS_URL`)."""
        return f"ws://{self.host}:{self.port}/audio-bridge/v2"

    @property
    def login_url(self) -> str:
        """The OAuth base (`CORTI_LOGIN_URL`)."""
        return f"{self.url}/realms"

    def client_options(self) -> dict[str, str]:
        """`CortiClient` keyword arguments for the three base URLs."""
        return {
            "base_url": self.base_url,
            "wss_url": self.wss_url,
            "login_url": self.login_url,
        }

    def environment(
        self,
        *,
        tenant: str = "base",
        client_id: str = "sandbox",
        secret: str = "sandbox",
    ) -> dict[str, str]:
        """CORTI_* environment variables pointing at this sandbox."""
        return {
            "CORTI_BASE_URL": self.base_url,
            "CORTI_WSS_URL": self.wss_url,
            "CORTI_LOGIN_URL": self.login_url,
            "CORTI_TENANT_NAME": tenant,
            "CORTI_CLIENT_ID": client_id,
            "CORTI_CLIENT_SECRET": secret,
        }

    def control(self) -> SandboxControl:
        """An async client for the `/_sandbox/` control endpoints."""
        return SandboxControl(self.url)

    def start(self, timeout: float = 10.0) -> Self:
        """Bind a free port, start serving, and wait until it accepts calls."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ws="websockets-sansio",
            http="h11",
            loop="auto",
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"corti-sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Corti sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SandboxServer({self.url})"


class SandboxControl:
    """Async helpers for the `/_sandbox/` endpoints (credits come back as Decimal)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        """Close the HTTP client (a later call opens a new one)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self._http is None:
            # Plain http on loopback: skip building a TLS context per client.
            self._http = httpx.AsyncClient(base_url=self.url, timeout=10, verify=False)
        response = await self._http.request(method, f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        if not response.content:
            return None
        return json.loads(response.content, parse_float=Decimal)

    async def reset(self) -> None:
        """Forget entities, ledger, faults and stats; restore startup settings."""
        await self._call("POST", "reset")

    async def arm(self, *faults: dict[str, Any]) -> list[dict[str, Any]]:
        """Arm fault switches (see corti_sandbox/faults.py); returns all armed."""
        answer = await self._call("POST", "faults", {"faults": list(faults)})
        armed: list[dict[str, Any]] = answer["faults"]
        return armed

    async def faults(self) -> list[dict[str, Any]]:
        """The armed faults with their remaining counts."""
        answer = await self._call("GET", "faults")
        armed: list[dict[str, Any]] = answer["faults"]
        return armed

    async def clear_faults(self) -> None:
        """Disarm every fault."""
        await self._call("DELETE", "faults")

    async def revoke_tokens(self) -> None:
        """Make every issued token invalid at once."""
        await self.arm({"kind": "revoke_tokens"})

    async def configure(self, **changes: Any) -> dict[str, Any]:
        """Change sandbox settings until the next reset."""
        config: dict[str, Any] = await self._call("PATCH", "config", changes)
        return config

    async def billed(
        self, interaction_id: str | None = None, *, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Ledger entries `{kind, id, interaction_id, tenant, credits, at}`."""
        query = {
            key: value
            for key, value in (("interaction_id", interaction_id), ("kind", kind))
            if value is not None
        }
        path = f"billed?{urlencode(query)}" if query else "billed"
        answer = await self._call("GET", path)
        rows: list[dict[str, Any]] = answer["billed"]
        return rows

    async def stats(self) -> dict[str, Any]:
        """`{tokens_issued, active_tokens, streams_opened, in_flight, requests}`."""
        stats: dict[str, Any] = await self._call("GET", "stats")
        return stats
