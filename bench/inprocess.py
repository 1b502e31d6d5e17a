"""Running the GraphQL schema in this process, and seeing the SQL it sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from service.auth.principal import ADMIN, Principal
from service.config import Settings
from service.db.session import Database
from service.graphql.context import Context
from service.graphql.schema import schema


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
        settings=Settings(database_url=str(db.engine.url)),
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
