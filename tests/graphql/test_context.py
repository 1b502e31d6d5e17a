"""The operation's loaders: built on first use (a webhook mutation reads
nothing through them), kept for the operation, fresh after reset_loaders."""

from __future__ import annotations

from typing import Any

import pytest

import service.graphql.context as context_module
from service.auth.principal import ADMIN
from service.config import Settings
from service.db.session import Database
from service.graphql.context import Context
from service.graphql.loaders import Loaders
from service.graphql.schema import schema
from tests.fixtures.seed import REGISTER

pytestmark = pytest.mark.asyncio


class CountedLoaders(Loaders):
    built = 0

    def __init__(self, *args: Any) -> None:
        CountedLoaders.built += 1
        super().__init__(*args)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[CountedLoaders]:
    CountedLoaders.built = 0
    monkeypatch.setattr(context_module, "Loaders", CountedLoaders)
    return CountedLoaders


async def _run(db: Database, query: str, variables: dict[str, Any]) -> None:
    context = Context(
        db=db,
        settings=Settings(database_url=db.engine.url.render_as_string(False)),
        principal=ADMIN,
    )
    result = await schema.execute(
        query, variable_values=variables, context_value=context
    )
    assert result.errors is None, result.errors


async def test_a_registration_builds_no_loaders(
    db: Database, counted: type[CountedLoaders]
) -> None:
    await _run(db, REGISTER, {"i": "i-ctx", "t": "t-ctx", "u": "u-ctx", "at": None})
    assert counted.built == 0


async def test_a_read_builds_them_once(
    db: Database, counted: type[CountedLoaders]
) -> None:
    await _run(db, REGISTER, {"i": "i-ctx", "t": "t-ctx", "u": "u-ctx", "at": None})
    query = """query { tenant(id: "t-ctx") { id credits { total }
      users(first: 5) { nodes { id credits { total } } } } }"""
    await _run(db, query, {})
    assert counted.built == 1


async def test_reset_gives_fresh_loaders(db: Database) -> None:
    context = Context(
        db=db,
        settings=Settings(database_url=db.engine.url.render_as_string(False)),
        principal=ADMIN,
    )
    first = context.loaders
    assert context.loaders is first
    context.reset_loaders()
    assert context.loaders is not first
