"""Alembic environment: async engine from DATABASE_URL, types compared."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from service.auth import models as auth_models  # noqa: F401 - registers the tables
from service.budgets import models as budget_models  # noqa: F401 - registers the tables
from service.config import get_settings
from service.db import models  # noqa: F401 - registers the tables
from service.db.base import Base
from service.db.session import create_engine
from service.webhooks import models as webhook_models  # noqa: F401 - registers the tables

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().database_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout without a database connection."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    """Run migrations on a live connection."""
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
