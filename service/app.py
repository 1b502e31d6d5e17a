"""The ASGI application: GraphQL, health checks, lifespan-owned resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from service import domains
from service.config import Settings, get_settings
from service.dashboard import routes as dashboard
from service.export.routes import Exports
from service.graphql.schema import schema
from service.graphql.view import GraphQLView
from service.jobs.records import JobKind
from service.memory import freeze_startup_objects
from service.middleware import BodyLimit, BodyTimeout, RequestContext
from service.observability import metrics, tracing
from service.observability.http import HttpMetrics
from service.ratelimit import RateLimiter
from service.state import AppState

JOB_KINDS = tuple(kind.value for kind in JobKind)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; the database engine lives from startup to shutdown."""
    settings = settings or get_settings()
    tracing.setup("api")
    limiter = (
        RateLimiter(settings.rate_limit_per_minute)
        if settings.rate_limit_per_minute > 0
        else None
    )
    domains.load()  # event handlers and job kinds of every domain
    state = AppState(settings, rate_limiter=limiter)
    view = GraphQLView(schema, state)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await state.start()
        metrics.watch_pool(state.db.engine)
        tracing.instrument_engine(state.db.engine)
        engine = state.db.engine
        freeze_startup_objects()
        try:
            yield
        finally:
            await state.close()
            metrics.unwatch_pool(engine)
            metrics.mark_process_dead()

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        try:
            async with state.db.read() as session:
                await session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means not ready
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_page(_request: Request) -> Response:
        body = metrics.process_metrics() + await metrics.database_metrics(
            state.db, JOB_KINDS
        )
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *([Route("/metrics", metrics_page)] if settings.metrics_enabled else []),
            *Exports(state).routes(),
            *dashboard.routes(),
        ],
        middleware=[
            *tracing.middleware(),
            Middleware(HttpMetrics),
            Middleware(RequestContext),
            Middleware(
                BodyLimit,
                limit=settings.max_body_bytes,
                upload_limit=settings.max_upload_bytes + 1024 * 1024,
            ),
            Middleware(
                BodyTimeout,
                idle=settings.body_read_timeout_seconds,
                total=settings.request_timeout_seconds,
            ),
        ],
        lifespan=lifespan,
    )


def create_worker_app() -> Starlette:
    """Factory for each `serve --workers N` process: JSON logs, then the app."""
    from service.logs import configure

    settings = get_settings()
    configure(settings.log_level)
    return create_app(settings)
