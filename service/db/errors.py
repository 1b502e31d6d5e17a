"""Which failures mean "the database is unreachable right now" (retry later).

A refused or reset connection, PostgreSQL shutting down, starting up,
ending sessions or out of connection slots (SQLSTATE class 08, 57P01-03,
53300), or a connection SQLAlchemy found dead. Such an error becomes `UNAVAILABLE` (HTTP 503) for clients
instead of `INTERNAL`, and is logged as one line, not a traceback: it is the
database's state, not a bug.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

import asyncpg
from sqlalchemy.exc import DBAPIError

# Connection exceptions; admin or crash shutdown, cannot connect now; too many
# connections (max_connections spent: retryable as well).
_SQLSTATES = ("08", "57P", "53300")
_CLOSED = ("connection is closed", "connection was closed")
_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(
            [
                current.__cause__,
                current.__context__,
                orig if isinstance(orig, BaseException) else None,
            ]
        )


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the database cannot be reached."""
    for current in _chain(error):
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, ConnectionError) or (
            isinstance(current, OSError) and current.errno in _ERRNOS
        ):
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_SQLSTATES):
            return True
        if isinstance(current, asyncpg.InterfaceError) and any(
            text in str(current) for text in _CLOSED
        ):
            return True
    return False


def describe(error: BaseException) -> str:
    """A one-line description for the log (no traceback)."""
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
