"""Per-request DataLoaders. Each batch runs in its own short read session.

Keys are `(params, owner_key)`: a batch is split by `params` (window, page
size, ...) and each distinct `params` costs one SQL statement, so the number
of statements depends on the shape of the query, not on the rows returned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from service.db.models import Interaction, Job, UsageRecord
from service.db.session import Database
from service.jobs.reads import jobs_by_id
from service.usage import queries
from service.usage.queries import (
    Bucket,
    InteractionRow,
    Owner,
    Page,
    Summary,
    TimeWindow,
    UserOrder,
)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# Keeps IN-lists below SQLite's and asyncpg's bound-parameter limits (32,766
# and 32,767; a user key takes two). The cost limit keeps real batches smaller.
MAX_BATCH = 10_000

Fetch = Callable[[AsyncSession, Any, list[Any]], Awaitable[dict[Any, Any]]]


def _grouped_loader(
    db: Database, fetch: Fetch, default: Callable[[], Any]
) -> DataLoader[Any, Any]:
    """A loader over `(params, key)` pairs, one statement per distinct params."""

    async def load(pairs: Sequence[tuple[Hashable, Hashable]]) -> list[Any]:
        by_params: dict[Hashable, list[Hashable]] = defaultdict(list)
        for params, key in pairs:
            if key not in by_params[params]:
                by_params[params].append(key)
        found: dict[tuple[Hashable, Hashable], Any] = {}
        async with db.read() as session:
            for params, keys in by_params.items():
                values = await fetch(session, params, keys)
                found.update({(params, key): value for key, value in values.items()})
        return [found[pair] if pair in found else default() for pair in pairs]

    return DataLoader(load_fn=load, max_batch_size=MAX_BATCH)


def _simple_loader(
    db: Database, fetch: Callable[[AsyncSession, list[Any]], Awaitable[dict[Any, Any]]]
) -> DataLoader[Any, Any]:
    async def load(keys: Sequence[Hashable]) -> list[Any]:
        async with db.read() as session:
            found = await fetch(session, list(dict.fromkeys(keys)))
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load, max_batch_size=MAX_BATCH)


def _empty_page() -> Page[Any]:
    return Page(items=[], total=0, offset=0)


class Loaders:
    """Every loader one request needs, created per request."""

    def __init__(self, db: Database) -> None:
        self.db = db

        async def summaries(
            session: AsyncSession, params: tuple[Owner, TimeWindow], keys: list[Any]
        ) -> dict[Any, Summary]:
            owner, window = params
            return await queries.credit_summaries(session, owner, keys, window)

        async def buckets(
            session: AsyncSession,
            params: tuple[Owner, TimeWindow, str, str, int],
            keys: list[Any],
        ) -> dict[Any, list[Bucket]]:
            owner, window, unit, zone_name, limit = params
            return await queries.usage_buckets(
                session, owner, keys, window, unit, zone_name, limit
            )

        async def users(
            session: AsyncSession,
            params: tuple[TimeWindow, UserOrder, int, int],
            keys: list[Any],
        ) -> dict[Any, Page[tuple[str, str]]]:
            window, order, first, offset = params
            return dict(
                await queries.users_pages(session, keys, window, order, first, offset)
            )

        async def interactions(
            session: AsyncSession,
            params: tuple[Owner, TimeWindow, int, int],
            keys: list[Any],
        ) -> dict[Any, Page[InteractionRow]]:
            owner, window, first, offset = params
            return await queries.interactions_pages(
                session, owner, keys, window, first, offset
            )

        async def interaction_counts(
            session: AsyncSession, params: tuple[Owner, TimeWindow], keys: list[Any]
        ) -> dict[Any, int]:
            owner, window = params
            return await queries.interaction_counts(session, owner, keys, window)

        async def records(
            session: AsyncSession, params: str | None, keys: list[Any]
        ) -> dict[Any, list[UsageRecord]]:
            return dict(await queries.records_of(session, keys, params))

        async def tenants(session: AsyncSession, keys: list[Any]) -> dict[Any, bool]:
            return {key: True for key in await queries.existing_tenants(session, keys)}

        async def user_exists(
            session: AsyncSession, keys: list[Any]
        ) -> dict[Any, bool]:
            return {key: True for key in await queries.existing_users(session, keys)}

        async def interaction(session: AsyncSession, keys: list[Any]) -> dict[Any, Any]:
            return dict(await queries.interactions_by_id(session, keys))

        async def jobs(session: AsyncSession, keys: list[Any]) -> dict[Any, Any]:
            return dict(await jobs_by_id(session, keys))

        self.summary: DataLoader[Any, Summary] = _grouped_loader(db, summaries, Summary)
        self.buckets: DataLoader[Any, list[Bucket]] = _grouped_loader(db, buckets, list)
        self.users: DataLoader[Any, Page[tuple[str, str]]] = _grouped_loader(
            db, users, _empty_page
        )
        self.interactions: DataLoader[Any, Page[InteractionRow]] = _grouped_loader(
            db, interactions, _empty_page
        )
        self.interaction_counts: DataLoader[Any, int] = _grouped_loader(
            db, interaction_counts, int
        )
        self.records: DataLoader[Any, list[UsageRecord]] = _grouped_loader(
            db, records, list
        )
        self.tenant_exists: DataLoader[str, bool | None] = _simple_loader(db, tenants)
        self.user_exists: DataLoader[tuple[str, str], bool | None] = _simple_loader(
            db, user_exists
        )
        self.interaction: DataLoader[str, Interaction | None] = _simple_loader(
            db, interaction
        )
        self.job: DataLoader[Any, Job | None] = _simple_loader(db, jobs)
