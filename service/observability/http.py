"""HTTP request latency per route template (pure ASGI middleware)."""

from __future__ import annotations

import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.observability.metrics import HTTP_DURATION, METHODS, ROUTE_OTHER


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/export/{name}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return ROUTE_OTHER
    if isinstance(route, Mount):
        return f"{path}/{{path}}"
    return path or "/"


class HttpMetrics:
    """Observes `ledger_http_request_duration_seconds` for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope.get("method", "")
            HTTP_DURATION.labels(
                route=route_template(scope),
                method=method if method in METHODS else "other",
                status=str(status["code"]),
            ).observe(time.perf_counter() - started)
