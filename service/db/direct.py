"""Hot-path statements run on PostgreSQL's asyncpg connection directly.

SQLAlchemy's `session.execute` of an already compiled, cached statement still
costs about 230 us of CPU (bench.statement_overhead): the ORM session, the
greenlet switch, the execution context and the result object. asyncpg's own
bind and fetch of the same prepared statement costs about 70 us. The ledger's
write path runs ten statements per webhook, so that difference is most of a
webhook's CPU.

A `Direct` statement is compiled once per dialect by SQLAlchemy (the same SQL
text, bind casts and type processing as `session.execute` would send), then,
on PostgreSQL, bound and run by asyncpg on the connection of the session's own
transaction (started first if SQLAlchemy has not yet sent anything on it), with
the connection's prepared-statement cache shared with SQLAlchemy's. Rows come
back as tuples (positional, like SQLAlchemy's rows) with the columns' result
types applied. Errors are raised as SQLAlchemy raises them (`DBAPIError` with
the driver's error as `.orig`), so `service.db.errors` and every caller see
the same failures either way.

On SQLite, and whenever anything listens to the engine's cursor events
(OpenTelemetry's SQLAlchemy instrumentation, bench's statement capture), the
statement goes through `session.execute` instead: same SQL, same rows, and
every statement still traced and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

_KEY = "service.db.direct"


@dataclass
class _Compiled:
    sql: str
    names: tuple[str, ...]
    defaults: tuple[Any, ...]  # a bind's own value, or _MISSING
    binds: tuple[Callable[[Any], Any] | None, ...]
    types: tuple[Any, ...]  # of the result columns (none for text())
    # The result processors, known once the driver has described the columns
    # (SQLAlchemy's take the column's type oid); None: nothing to convert.
    results: tuple[Callable[[Any], Any] | None, ...] | None = None
    described: bool = False

    def describe(self, dialect: Dialect, attributes: Sequence[Any]) -> None:
        """Set the result processors from the prepared statement's columns."""
        if self.types:
            processors = [
                kind._cached_result_processor(dialect, attribute.type.oid)
                for kind, attribute in zip(self.types, attributes, strict=True)
            ]
            self.results = tuple(processors) if any(processors) else None
        self.described = True


_MISSING = object()


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    sql = compiled.string
    if "POSTCOMPILE" in sql:  # expanding IN renders per call: not for this path
        raise ValueError("a Direct statement cannot have expanding parameters")
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors
    defaults = []
    for name in names:
        bind = compiled.binds[name]
        has_value = bind.value is not None or bind.callable is not None
        defaults.append(bind.effective_value if has_value else _MISSING)
    return _Compiled(
        sql=sql,
        names=names,
        defaults=tuple(defaults),
        binds=tuple(processors.get(name) for name in names),
        types=tuple(entry.type for entry in compiled._result_columns),
    )


def _listened(session: AsyncSession) -> bool:
    dispatch = session.sync_session.get_bind().dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


async def _adapted(session: AsyncSession) -> Any:
    """The asyncpg adapter of the session's transaction's connection."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_KEY)
    if cached is not None and cached[0] is transaction:
        return cached[1]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted = raw.dbapi_connection
    session.info[_KEY] = (session.sync_session.get_transaction(), adapted)
    return adapted


async def _begun(adapted: Any) -> None:
    """Send the transaction's BEGIN unless SQLAlchemy already has (it does so
    lazily, with the first statement it sends)."""
    if adapted._transaction is None:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()


class Direct:
    """A statement for the hot paths; see the module docstring."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return compiled

    async def rows(
        self,
        session: AsyncSession,
        params: Mapping[str, Any] | None = None,
        *,
        alone: bool = False,
    ) -> Sequence[Sequence[Any]]:
        """Run it in the session's transaction; the rows it returns.

        `alone`: the transaction's one statement (an API key lookup, a signed
        webhook's replay check). On PostgreSQL it is then sent without BEGIN
        and COMMIT, as its own implicit transaction (two round trips fewer),
        unless the transaction has already begun.
        """
        params = params or {}
        bind = session.sync_session.get_bind()
        dialect = bind.dialect
        if dialect.name != "postgresql" or _listened(session):
            result = await session.execute(self.statement, dict(params))
            return result.all() if getattr(result, "returns_rows", True) else []
        compiled = self._for(dialect)
        args = []
        for name, default, process in zip(
            compiled.names, compiled.defaults, compiled.binds, strict=True
        ):
            value = params[name] if default is _MISSING else params.get(name, default)
            args.append(value if process is None else process(value))
        adapted = await _adapted(session)
        try:
            if not alone:
                await _begun(adapted)
            async with adapted._execute_mutex:
                prepared, attributes = await adapted._prepare(compiled.sql, 0)
                records = await prepared.fetch(*args)
        except Exception as error:  # noqa: BLE001 - translated, as SQLAlchemy does
            wrapped = _wrapped(
                adapted,
                dialect,
                compiled.sql,
                args,
                error,
                bool(getattr(bind, "hide_parameters", False)),
            )
            if wrapped.connection_invalidated:
                # As SQLAlchemy does on a disconnect: the pool drops this
                # connection instead of handing it out again.
                connection = await session.connection()
                await connection.invalidate(wrapped)
            raise wrapped from wrapped.orig
        if not compiled.described:
            compiled.describe(dialect, attributes)
        results = compiled.results
        if results is None:
            return records  # type: ignore[no-any-return]
        return [
            tuple(
                value if process is None or value is None else process(value)
                for value, process in zip(record, results, strict=True)
            )
            for record in records
        ]

    async def run(
        self,
        session: AsyncSession,
        params: Mapping[str, Any] | None = None,
        *,
        alone: bool = False,
    ) -> None:
        """Run it in the session's transaction, ignoring any rows."""
        await self.rows(session, params, alone=alone)


def _wrapped(
    adapted: Any,
    dialect: Dialect,
    sql: str,
    args: list[Any],
    error: Exception,
    hide_parameters: bool,
) -> exc.DBAPIError:
    """`error` as SQLAlchemy would raise it from `session.execute`: the
    driver's error translated by the dialect, wrapped in a `DBAPIError`
    (parameters shown unless the engine hides them), and marked `connection_invalidated` when the
    connection is gone (whatever the error said, as the dialect decides)."""
    try:
        adapted._handle_exception(error)
    except Exception as translated:  # noqa: BLE001 - it always raises
        wrapped = exc.DBAPIError.instance(
            sql,
            tuple(args),
            translated,
            dialect.loaded_dbapi.Error,
            hide_parameters=hide_parameters,
            connection_invalidated=dialect.is_disconnect(
                translated,  # type: ignore[arg-type]
                adapted,
                None,
            ),
            dialect=dialect,
            ismulti=False,
        )
        if not isinstance(wrapped, exc.DBAPIError):  # not a driver error at all
            raise error from None
        wrapped.__cause__ = translated
        return wrapped
    raise AssertionError("unreachable")  # _handle_exception always raises
