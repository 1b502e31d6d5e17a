"""graphql-transport-ws with the HTTP rules: key re-checked, subscriptions only.

- The key is re-checked every `WS_KEY_RECHECK_SECONDS` and before each
  operation: once it is revoked, the socket closes with 4403 (ending every
  subscription on it). While the database is unreachable the periodic check
  is deferred, so subscriptions outlive a database restart.
- Only subscriptions run over the socket. Queries and mutations get an
  `error` message with BAD_USER_INPUT: over HTTP they are rate-limited,
  time-limited and size-limited, and the socket would skip those limits.
- Each `subscribe` spends one request of the key's rate limit (the same
  budget, and the same RATE_LIMITED error, as HTTP).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from service.auth.http import check_rate, still_valid
from service.db.errors import database_unavailable, describe
from service.errors import AppError, BadUserInput
from service.graphql.context import Context

log = logging.getLogger("service.http")

REVOKED_CODE = 4403
MAX_TOKENS = 20_000  # as service.graphql.schema.MAX_TOKENS (checked by a test)


def operation_type(query: object, operation_name: object) -> OperationType | None:
    """The type of the operation a subscribe message would run, if it parses."""
    if not isinstance(query, str):
        return None
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None  # strawberry answers syntax errors itself
    operations = [
        d for d in document.definitions if isinstance(d, OperationDefinitionNode)
    ]
    if operation_name is not None:
        operations = [
            o for o in operations if o.name and o.name.value == operation_name
        ]
    if len(operations) != 1:
        return None
    return operations[0].operation


class GuardedTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """strawberry's graphql-transport-ws handler with the rules above."""

    _watch: asyncio.Task[None] | None = None

    @property
    def _ctx(self) -> Context:
        context: Context = self.context
        return context

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Acknowledge as strawberry does, then watch the key."""
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._watch is None:
            self._watch = asyncio.create_task(self._watch_key())

    async def _watch_key(self) -> None:
        interval = self._ctx.settings.ws_key_recheck_seconds
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    active = await self._key_active()
                except Exception as error:
                    if not database_unavailable(error):
                        raise
                    # The key cannot be revoked while the database is down
                    # either: keep the socket, check again next time.
                    log.warning("websocket key re-check deferred: %s", describe(error))
                    continue
                if not active:
                    await self._close_revoked()
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("websocket key re-check failed")
            with suppress(Exception):
                await self.websocket.close(code=1011, reason="key check failed")

    async def _key_active(self) -> bool:
        principal = self._ctx.principal
        return principal is not None and await still_valid(self._ctx.db, principal)

    async def _close_revoked(self) -> None:
        with suppress(Exception):
            await self.websocket.close(
                code=REVOKED_CODE, reason="Forbidden: key revoked"
            )

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Refuse revoked keys, spent rate limits, and non-subscriptions."""
        if self.connection_acknowledged:
            if not await self._key_active():
                await self._close_revoked()
                return
            payload: Any = message.get("payload") or {}
            kind = operation_type(payload.get("query"), payload.get("operationName"))
            try:
                if kind is not None and kind is not OperationType.SUBSCRIPTION:
                    raise BadUserInput(
                        "query",
                        "only subscriptions run over the websocket; send queries "
                        "and mutations over HTTP",
                    )
                principal = self._ctx.principal
                assert principal is not None
                check_rate(self._ctx.extras["state"].rate_limiter, principal, None)
            except AppError as error:
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [
                            {
                                "message": error.message,
                                "extensions": {**error.extensions, "code": error.code},
                            }
                        ],
                    }
                )
                return
        await super().handle_subscribe(message)

    async def shutdown(self) -> None:
        """Stop watching the key, then strawberry's shutdown."""
        if self._watch is not None:
            self._watch.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._watch
        await super().shutdown()
