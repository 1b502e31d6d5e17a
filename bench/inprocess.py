"""Running the GraphQL schema in this process, and seeing the SQL it sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from service.auth.principal import ADMIN, Principal
from service.config import Settings
from service.db.session import Database
from service.graphql.context import Context
from service.graphql.schema import schema


@lru_cache(maxsize=8)
def _settings(url: str) -> Settings:
    # Built once per database, as the app builds its Settings once: building
    # them per call (pydantic-settings reads the environment and .env) cost
    # about 2.5 ms, a quarter of the CPU bench.request_path reported.
    return Settings(database_url=url)


async def execute(
    db: Database,
    query: str,
    variables: dict[str, Any],
    principal: Principal = ADMIN,
) -> dict[str, Any]:
    """Run an operation as an admin key (or `principal`) would, without HTTP
    (and without the key lookup that authentication adds over HTTP)."""
    context = Context(
        db=db,
        settings=_settings(db.engine.url.render_as_string(hide_password=False)),
        principal=principal,
    )
    result = await schema.execute(
        query, variable_values=variables, context_value=context
    )
    if result.errors:
        raise RuntimeError(f"GraphQL errors: {result.errors}")
    assert result.data is not None
    return result.data


@dataclass
class Captured:
    """Statements sent to any engine of this process, with their parameters."""

    statements: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        self.statements.append((statement, parameters))


@contextmanager
def capture() -> Iterator[Captured]:
    """Capture statements (a before_cursor_execute listener on every Engine)."""
    captured = Captured()
    event.listen(Engine, "before_cursor_execute", captured)
    try:
        yield captured
    finally:
        event.remove(Engine, "before_cursor_execute", captured)
