"""Every error a client sees carries `extensions.code` (docs/contract.md).

Expected errors (`AppError`) keep their message and code. Errors raised before
execution (syntax, validation, variable coercion) are BAD_USER_INPUT. Anything
else is INTERNAL: the client gets a request id, the log gets the traceback.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from decimal import InvalidOperation
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from service.db.errors import database_unavailable, describe
from service.errors import AppError, Unavailable

log = logging.getLogger("service.graphql")

_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")
_REQUEST_ERRORS = (ValueError, TypeError, InvalidOperation, GraphQLError)


def format_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The client-safe version of one error."""
    original = error.original_error
    if isinstance(original, AppError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            path=error.path,
            extensions={**original.extensions, "code": original.code},
        )
    if error.path is None and (
        original is None or isinstance(original, _REQUEST_ERRORS)
    ):
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", "BAD_USER_INPUT")
        # graphql-core's "Did you mean ...?" hints would reveal the schema to
        # callers that may not introspect it.
        message = _SUGGESTION.sub("", error.message)
        return GraphQLError(
            message, nodes=error.nodes, path=error.path, extensions=extensions
        )
    if original is None and (error.extensions or {}).get("code"):
        return error
    if original is not None and database_unavailable(original):
        log.warning(
            "database unavailable in %s: %s",
            ".".join(str(p) for p in error.path or []) or "operation",
            describe(original),
        )
        unavailable = Unavailable()
        return GraphQLError(
            unavailable.message,
            nodes=error.nodes,
            path=error.path,
            extensions={**unavailable.extensions, "code": unavailable.code},
        )
    log.error(
        "unexpected error in %s",
        ".".join(str(p) for p in error.path or []) or "operation",
        exc_info=(type(original), original, original.__traceback__)
        if original
        else None,
    )
    return GraphQLError(
        f"Internal error. Quote request id {request_id} when reporting it.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL", "requestId": request_id},
    )


class ErrorCodes(SchemaExtension):
    """Rewrites the operation's errors into their client-safe form."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        self._format(result.errors)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """The same for each result a subscription streams over WebSocket."""
        errors = getattr(result, "errors", None)
        if errors:
            self._format(errors)
        yield

    def _format(self, errors: list[GraphQLError]) -> None:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None) or uuid.uuid4().hex
        errors[:] = [format_error(e, request_id) for e in errors]
