"""GET /export/usage.csv, /export/usage.ndjson, /export/daily.csv and /export/budgets.csv.

The same API keys and tenant scope as GraphQL: no key is 401, an ingest key
403, and a key bound to a tenant exports that tenant alone. Rows are streamed
in batches from a server-side cursor inside one read transaction, so an export
of any size uses the same memory; at most `MAX_CONCURRENT` exports per process
hold a database connection at once (more get 429).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable, Hashable, MutableMapping
from contextlib import aclosing
from datetime import datetime
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from service.auth.http import (
    authenticate_request,
    check_rate,
    error_body,
    error_headers,
    http_status,
    rate_identity,
)
from service.auth.principal import Principal
from service.budgets import report as budget_report
from service.db.base import utcnow
from service.db.session import Database
from service.errors import AppError, BadUserInput, Forbidden
from service.export import formats
from service.export.queries import (
    ExportFilter,
    Plan,
    RowsSelect,
    daily_totals,
    usage_records,
)
from service.graphql.scalars import parse_datetime
from service.state import AppState
from service.usage.queries import TimeWindow
from service.usage.records import Source
from service.validation import check_id, check_range, check_time_zone

log = logging.getLogger("service.http")

BATCH_ROWS = 1000
MAX_CONCURRENT = 4
MAX_PER_KEY = 2
# A client that takes longer than this to accept the next chunk loses its slot.
SEND_TIMEOUT_SECONDS = 30.0
# Exports are long single statements; the API's per-statement timeout is not.
STATEMENT_TIMEOUT_MS = 10 * 60 * 1000

FILTERS = ("tenant", "user", "interaction", "source", "from", "to")


class TooManyExports(AppError):
    """Every export slot is busy: HTTP 429 with Retry-After."""

    code = "FORBIDDEN"
    status = 429

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, reason="EXPORTS_BUSY", retryAfter=retry_after)


class _ClosingStream(StreamingResponse):
    """Closes the row generator (and so its DB session) even on disconnect."""

    def __init__(
        self,
        rows: AsyncGenerator[bytes],
        on_close: Callable[[], None],
        send_timeout: float = SEND_TIMEOUT_SECONDS,
        **kw: Any,
    ) -> None:
        super().__init__(rows, **kw)
        self.rows = rows
        self.on_close = on_close
        self.send_timeout = send_timeout

    async def stream_response(self, send: Send) -> None:
        async def bounded_send(message: MutableMapping[str, Any]) -> None:
            # A reader that stops reading blocks `send` (backpressure): it
            # loses its slot after send_timeout instead of holding it forever.
            async with asyncio.timeout(self.send_timeout):
                await send(message)

        try:
            async with aclosing(self.rows):
                await super().stream_response(bounded_send)
        except TimeoutError:
            log.warning(
                "export reader too slow; stream aborted",
                extra={"timeout_seconds": self.send_timeout},
            )
        finally:
            self.on_close()


def _error(error: AppError) -> Response:
    return Response(
        json.dumps(error_body(error)),
        status_code=http_status(error),
        headers={"Cache-Control": "no-store", **error_headers(error)},
        media_type="application/json",
    )


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise BadUserInput(name, f"unknown parameter; use {', '.join(allowed)}")
        if name in params:
            raise BadUserInput(name, "given more than once")
        params[name] = value
    return params


def _time(params: dict[str, str], name: str) -> datetime | None:
    if name not in params:
        return None
    try:
        return parse_datetime(params[name])
    except ValueError as error:
        raise BadUserInput(name, str(error)) from None


def _source(params: dict[str, str]) -> Source | None:
    if "source" not in params:
        return None
    try:
        return Source(params["source"].upper())
    except ValueError:
        names = ", ".join(s.value for s in Source)
        raise BadUserInput("source", f"must be one of {names}") from None


def scoped_filter(principal: Principal, params: dict[str, str]) -> ExportFilter:
    """The filter from the query string, narrowed to what the caller may see."""
    principal.require_read()
    ids = {
        name: check_id(name, params[name])
        for name in ("tenant", "user", "interaction")
        if name in params
    }
    tenant = ids.get("tenant")
    if principal.tenant_id is not None:
        if tenant is not None and tenant != principal.tenant_id:
            raise Forbidden("this key is bound to another tenant")
        tenant = principal.tenant_id
    start, end = check_range("from", _time(params, "from"), _time(params, "to"))
    return ExportFilter(
        tenant_id=tenant,
        user_id=ids.get("user"),
        interaction_id=ids.get("interaction"),
        source=_source(params),
        window=TimeWindow(start=start, end=end),
    )


class Exports:
    """The export endpoints of one app (they share its database and key check)."""

    def __init__(self, state: AppState, max_concurrent: int = MAX_CONCURRENT) -> None:
        self.state = state
        self.slots = asyncio.Semaphore(max_concurrent)
        self.per_key: dict[Hashable, int] = {}
        self.max_per_key = MAX_PER_KEY
        self.send_timeout = SEND_TIMEOUT_SECONDS

    def routes(self) -> list[Route]:
        """Starlette routes under /export."""
        return [
            Route("/export/usage.csv", self.usage_csv, methods=["GET"]),
            Route("/export/usage.ndjson", self.usage_ndjson, methods=["GET"]),
            Route("/export/daily.csv", self.daily_csv, methods=["GET"]),
            Route("/export/budgets.csv", self.budgets_csv, methods=["GET"]),
        ]

    async def budgets_csv(self, request: Request) -> Response:
        """The quota consumption report: a row per budget and period (budgets/report.py)."""
        db: Database = self.state.db
        try:
            principal = await authenticate_request(request, db, self.state.settings)
            check_rate(
                getattr(self.state, "rate_limiter", None),
                principal,
                request.client and request.client.host,
            )
            params = _params(request, ("tenant", "from", "to"))
            where = scoped_filter(principal, params)
            tenants = None if where.tenant_id is None else [where.tenant_id]
            async with db.read() as session:
                rows = await budget_report.rows(
                    session, tenants, where.window.start, where.window.end, utcnow()
                )
        except AppError as error:
            return _error(error)
        body = formats.csv_header(budget_report.COLUMNS) + formats.csv_encoder(
            lambda row: row
        )(rows)
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="budgets.csv"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def usage_csv(self, request: Request) -> Response:
        """One CSV line per usage record."""
        return await self._export(
            request,
            FILTERS,
            lambda where, _: (
                usage_records(where),
                formats.csv_header(formats.USAGE_COLUMNS),
                formats.csv_encoder(formats.usage_values),
            ),
            "usage.csv",
            "text/csv; charset=utf-8",
        )

    async def usage_ndjson(self, request: Request) -> Response:
        """One JSON object per line and usage record."""
        return await self._export(
            request,
            FILTERS,
            lambda where, _: (
                usage_records(where),
                b"",
                formats.ndjson_encoder(formats.USAGE_COLUMNS, formats.usage_values),
            ),
            "usage.ndjson",
            "application/x-ndjson",
        )

    async def daily_csv(self, request: Request) -> Response:
        """Credits per local day, tenant, user and source (`timeZone`, default UTC)."""

        def build(
            where: ExportFilter, params: dict[str, str]
        ) -> tuple[RowsSelect | Plan, bytes, formats.Encoder]:
            zone_name = check_time_zone("timeZone", params.get("timeZone", "UTC"))
            return (
                daily_totals(where, zone_name),
                formats.csv_header(formats.DAILY_COLUMNS),
                formats.csv_encoder(formats.daily_values(zone_name)),
            )

        return await self._export(
            request,
            (*FILTERS, "timeZone"),
            build,
            "daily.csv",
            "text/csv; charset=utf-8",
        )

    async def _export(
        self,
        request: Request,
        allowed: tuple[str, ...],
        build: Callable[
            [ExportFilter, dict[str, str]],
            tuple[RowsSelect | Plan, bytes, formats.Encoder],
        ],
        filename: str,
        media_type: str,
    ) -> Response:
        db: Database = self.state.db
        try:
            principal = await authenticate_request(request, db, self.state.settings)
            check_rate(
                getattr(self.state, "rate_limiter", None),
                principal,
                request.client and request.client.host,
            )
            params = _params(request, allowed)
            statement, header, encode = build(scoped_filter(principal, params), params)
            identity = rate_identity(principal, request.client and request.client.host)
            if self.per_key.get(identity, 0) >= self.max_per_key:
                raise TooManyExports(
                    f"this key already runs {self.max_per_key} exports; retry when "
                    "one has finished"
                )
            if self.slots.locked():
                raise TooManyExports("too many exports running; retry shortly")
            await self.slots.acquire()
            self.per_key[identity] = self.per_key.get(identity, 0) + 1
        except AppError as error:
            return _error(error)

        def release() -> None:
            left = self.per_key.pop(identity, 1) - 1
            if left > 0:
                self.per_key[identity] = left
            self.slots.release()

        return _ClosingStream(
            _rows(db, statement, header, encode),
            release,
            self.send_timeout,
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )


async def _rows(
    db: Database,
    statement: RowsSelect | Plan,
    header: bytes,
    encode: formats.Encoder,
) -> AsyncGenerator[bytes]:
    if header:
        yield header
    async with db.read() as session:
        if db.dialect == "postgresql":
            await session.execute(
                text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            )
        if callable(statement):  # the daily export reads its days' edges first
            statement = await statement(session)
        result = await session.stream(statement.execution_options(yield_per=BATCH_ROWS))
        async for rows in result.partitions():
            yield encode(rows)
