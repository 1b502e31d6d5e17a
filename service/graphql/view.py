"""The HTTP view: authentication, exact JSON numbers, and error status codes."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from decimal import Decimal
from typing import Any

from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData, GraphQLRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from service.auth.http import (
    authenticate_request,
    check_rate,
    error_headers,
    http_status,
    may_upload,
)
from service.auth.principal import Principal
from service.config import Settings
from service.dashboard import routes as dashboard
from service.db.errors import database_unavailable, describe
from service.db.session import Database
from service.errors import AppError, Forbidden, Unauthenticated, Unavailable
from service.graphql.context import Context
from service.graphql.http_body import (
    MalformedRequest,
    media_type,
    multipart_operations,
    read_form,
    request_data,
)
from service.graphql.subscriptions import authenticate_connection
from service.graphql.ws import GuardedTransportWS
from service.logs import request_id_var
from service.state import AppState

log = logging.getLogger("service.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"


def prefers_graphql_response(accept: str | None) -> bool:
    """Whether the client asked for application/graphql-response+json first.

    Media types are compared whole (`...+jsonx` is not the type); any header,
    however odd, gives an answer.
    """
    if not accept or GRAPHQL_RESPONSE not in accept:
        return False
    media = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    ranked = [m for m in media if m in (GRAPHQL_RESPONSE, "application/json")]
    return bool(ranked) and ranked[0] == GRAPHQL_RESPONSE


class _Refused(Exception):
    """Answer the request with `response` before reading (more of) its body."""

    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


class _Adapter(StarletteRequestAdapter):
    """strawberry's request adapter, exposing the Starlette request."""

    @property
    def request(self) -> Request:
        """The Starlette request."""
        return self._request


class _SubResponse(Response):
    """The sub-response, remembering the request it answers."""

    def __init__(self, request: Request | WebSocket) -> None:
        super().__init__()
        self.status_code = None  # type: ignore[assignment]  # strawberry: "not set"
        del self.headers["content-length"]
        self.request = request
        self.graphql_response = prefers_graphql_response(request.headers.get("accept"))
        self.request_error = False


class GraphQLView(GraphQL[Context, None]):
    """strawberry's ASGI view with our context, authentication and media types.

    Clients that accept `application/graphql-response+json` get it, with status
    400 and no `data` when the request failed before execution (GraphQL over
    HTTP spec); `application/json` clients keep the classic always-200 form.
    """

    request_adapter_class = _Adapter
    graphql_transport_ws_handler_class = GuardedTransportWS

    def __init__(self, schema: Any, state: AppState) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            multipart_uploads_enabled=True,
            # graphql-transport-ws only: the legacy graphql-ws protocol would
            # need the same guards (service/graphql/ws.py).
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP: every refusal is a coded JSON error; the parsed form is closed."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            try:
                response = await self.run(request)
            except _Refused as refused:
                response = refused.response
            except HTTPException as error:
                response = await self._early(
                    request, MalformedRequest(error.reason), error.status_code
                )
            await response(scope, receive, send)
        finally:
            # Closes the multipart form, so no temporary file outlives the request.
            await request.close()

    def decode_json(self, data: str | bytes) -> object:
        """JSON numbers become Decimal, so credits sent as numbers stay exact.

        The cyclic garbage collector is paused while a body is parsed: a body
        nested thousands deep takes the parser to the recursion limit, and a
        collection started there would run unrelated finalizers (a connection's
        return to its pool, say) where they can only fail with RecursionError.
        The parse runs no Python code and awaits nothing, so the pause is short.
        """
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return json.loads(data, parse_float=Decimal)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as error:
            # E.g. an integer of more than 4,300 digits, or nesting deeper than
            # Python's recursion limit (HTTP bodies and websocket messages alike).
            text = data.decode(errors="replace") if isinstance(data, bytes) else data
            raise json.JSONDecodeError(type(error).__name__, text[:100], 0) from None
        finally:
            if paused:
                gc.enable()

    async def _early(
        self, request: Request, error: AppError, status: int | None = None
    ) -> Response:
        """The response to a request refused before execution."""
        sub_response = getattr(request.state, "sub_response", None)
        if not isinstance(sub_response, _SubResponse):
            sub_response = _SubResponse(request)
            request.state.sub_response = sub_response
        sub_response.status_code = status or http_status(error)
        sub_response.headers.update(error_headers(error))
        if sub_response.status_code == 401 or not isinstance(
            error, (MalformedRequest, Unavailable)
        ):
            # The body was not read: the client may still be sending it.
            # (After a 503 the server discards it instead, within the body
            # limits, so that a sender mid-upload reads the answer to retry.)
            sub_response.headers["Connection"] = "close"
        result = _failure(error.message, code=error.code, **error.extensions)
        data = await self.process_result(request, result)
        return self.create_response(data, sub_response)

    async def _admit(self, request: Request, context: Context) -> Principal:
        """Authenticate and rate-limit from the headers, before any body is read."""
        try:
            if context.principal is None:
                raise context.auth_error or Unauthenticated("an API key is required")
            check_rate(
                self.state.rate_limiter,
                context.principal,
                request.client and request.client.host,
            )
        except AppError as error:
            raise _Refused(await self._early(request, error)) from None
        return context.principal

    async def parse_http_body(self, request_adapter: Any) -> GraphQLRequestData:
        """The request's operation, read only for an admitted caller.

        A multipart body (audio) is read only for a caller that may upload;
        every malformed shape is a 400 with BAD_USER_INPUT.
        """
        request: Request = request_adapter.request
        principal = await self._admit(request, request.state.context)
        transport = self._get_stream_transport_from_headers(request.headers)
        protocol: GraphQLRequestProtocol = transport.protocol if transport else "http"
        try:
            if request.method == "GET":
                data: object = self.parse_query_params(request_adapter.query_params)
            else:
                media = media_type(request.headers.get("content-type"))
                if media == "application/json":
                    data = self.parse_json(await request.body())
                elif media == "multipart/form-data":
                    if not may_upload(principal):
                        raise _Refused(
                            await self._early(
                                request,
                                Forbidden(
                                    f"a key with role {principal.role.value} "
                                    "cannot upload audio"
                                    + (" (signed webhook)" if principal.webhook else "")
                                ),
                            )
                        )
                    form = await read_form(request)
                    data = multipart_operations(form, self.parse_json)
                else:
                    raise MalformedRequest("Unsupported content type")
            return request_data(data, protocol)
        except MalformedRequest as error:
            raise _Refused(await self._early(request, error)) from None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """A sub-response that knows the request's preferred media type."""
        return _SubResponse(request)

    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        """Drop `data` for request errors when the client speaks the new media type."""
        data = await super().process_result(request, result)
        sub_response = getattr(request.state, "sub_response", None)
        failed_early = (
            result.data is None
            and bool(result.errors)
            and all(error.path is None for error in result.errors or [])
        )
        if (
            isinstance(sub_response, _SubResponse)
            and sub_response.graphql_response
            and failed_early
        ):
            data.pop("data", None)
            sub_response.request_error = True
        return data

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """Set the media type and status the client negotiated."""
        response = super().create_response(response_data, sub_response)
        if isinstance(sub_response, _SubResponse) and sub_response.graphql_response:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
            if sub_response.request_error and response.status_code == 200:
                response.status_code = 400
        return response

    async def get_context(self, request: Any, response: Any) -> Context:
        """Authenticate once per request; failures are reported at execution."""
        db: Database = self.state.db
        settings: Settings = self.state.settings
        request.state.sub_response = response
        request_id = request_id_var.get() or ""
        principal: Principal | None = None
        error: AppError | None = None
        try:
            principal = await authenticate_request(request, db, settings)
        except AppError as refused:
            error = refused
        except Exception as failure:
            if database_unavailable(failure):
                log.warning("authentication failed: %s", describe(failure))
                principal, error = None, Unavailable()
            else:
                # INTERNAL with a request id, like any unexpected error,
                # rather than a bare 500 page.
                log.exception("authentication failed")
                principal, error = None, _internal(request_id)
        context = Context(
            db=db,
            settings=settings,
            principal=principal,
            auth_error=error,
            request_id=request_id,
            request=request,
            response=response,
            extras={"state": self.state},
        )
        request.state.context = context
        return context

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from the service's own static files (no CDN)."""
        return dashboard.page("graphiql.html")

    async def on_ws_connect(self, context: Context) -> None:
        """graphql-transport-ws: the key comes in the connection_init payload."""
        await authenticate_connection(context)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: Any,
        request_data: Any,
        context: Context,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        """Time-limit every operation (callers were admitted while parsing).

        Every operation, introspection included, needs a valid key.
        """
        if context.principal is None:  # never admitted: refuse, whatever the path
            error = context.auth_error or Unauthenticated("an API key is required")
            sub_response.status_code = http_status(error)
            sub_response.headers.update(error_headers(error))
            return _failure(error.message, code=error.code, **error.extensions)
        timeout = context.settings.request_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                result = await super().execute_operation(
                    request,
                    request_adapter,
                    request_data,
                    context,
                    root_value,
                    sub_response,
                )
            if isinstance(result, ExecutionResult) and _unavailable_only(result):
                sub_response.status_code = 503
                sub_response.headers["Retry-After"] = str(Unavailable.retry_after)
            return result
        except TimeoutError:
            log.warning("request timed out", extra={"timeout_seconds": timeout})
            sub_response.status_code = 504
            return _failure(
                f"the request took longer than {timeout:g} s and was cancelled "
                f"(request id {context.request_id})",
                code="INTERNAL",
                requestId=context.request_id,
            )


def _unavailable_only(result: ExecutionResult) -> bool:
    """Nothing succeeded, and only because the database was unreachable.

    Such an answer is HTTP 503 with Retry-After, so that proxies and senders
    retry it; a partial success keeps its 200.
    """
    if not result.errors or any(
        (error.extensions or {}).get("code") != Unavailable.code
        for error in result.errors
    ):
        return False
    return not result.data or all(value is None for value in result.data.values())


def _internal(request_id: str) -> AppError:
    return AppError(
        f"Internal error. Quote request id {request_id} when reporting it.",
        requestId=request_id,
    )


def _failure(message: str, *, code: str, **extensions: Any) -> ExecutionResult:
    return ExecutionResult(
        data=None,
        errors=[GraphQLError(message, extensions={"code": code, **extensions})],
    )
