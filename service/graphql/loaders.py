"""Per-request DataLoaders over the read services. Each batch runs in its own
short read (on PostgreSQL without BEGIN and COMMIT): on a Core connection
(`Database.rows`) where the answer is plain rows, the usage figures and pages
a dashboard asks for, in an ORM session (`Database.query`) where it is ORM
instances (records, interactions and jobs by id).

Keys are `(params, owner_key)`: a batch is split by `params` (window, page
size, ...) and each distinct `params` costs one SQL statement, so the number
of statements depends on the shape of the query, not on the rows returned.
Loaders hold no rule of their own: each batch asks the caller's read service
(service/usage/reads.py, service/jobs/reads.py), which applies role and
tenant scope, and never builds SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from strawberry.dataloader import DataLoader

from service.auth.principal import Principal
from service.db.models import Interaction, Job, UsageRecord
from service.db.session import Database
from service.jobs.reads import JobReader
from service.usage.queries import (
    Bucket,
    InteractionRow,
    Owner,
    Page,
    Summary,
    TimeWindow,
    UserOrder,
)
from service.usage.reads import OwnerLookup, UsageReader, read_service

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# Keeps IN-lists below SQLite's and asyncpg's bound-parameter limits (32,766
# and 32,767; a user key takes two). The cost limit keeps real batches smaller.
MAX_BATCH = 10_000

Fetch = Callable[[Any, Any, list[Any]], Awaitable[dict[Any, Any]]]


def _grouped_loader(
    db: Database, fetch: Fetch, default: Callable[[], Any], *, orm: bool = False
) -> DataLoader[Any, Any]:
    """A loader over `(params, key)` pairs, one statement per distinct params;
    `fetch` gets a Core connection, or an ORM session if `orm`."""

    async def load(pairs: Sequence[tuple[Hashable, Hashable]]) -> list[Any]:
        by_params: dict[Hashable, list[Hashable]] = defaultdict(list)
        for params, key in pairs:
            if key not in by_params[params]:
                by_params[params].append(key)
        found: dict[tuple[Hashable, Hashable], Any] = {}
        async with db.query() if orm else db.rows() as session:
            for params, keys in by_params.items():
                values = await fetch(session, params, keys)
                found.update({(params, key): value for key, value in values.items()})
        return [found[pair] if pair in found else default() for pair in pairs]

    return DataLoader(load_fn=load, max_batch_size=MAX_BATCH)


def _simple_loader(
    db: Database,
    fetch: Callable[[Any, list[Any]], Awaitable[dict[Any, Any]]],
    *,
    orm: bool = False,
) -> DataLoader[Any, Any]:
    async def load(keys: Sequence[Hashable]) -> list[Any]:
        async with db.query() if orm else db.rows() as session:
            found = await fetch(session, list(dict.fromkeys(keys)))
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load, max_batch_size=MAX_BATCH)


def _empty_page() -> Page[Any]:
    return Page(items=[], total=0, offset=0)


class Loaders:
    """Every loader one request needs, created per request for one caller.

    `caller` gives the request's principal (raising UNAUTHENTICATED when there
    is none); it is asked at batch time, after authentication.
    """

    def __init__(self, db: Database, caller: Callable[[], Principal]) -> None:
        self.db = db

        def reader() -> UsageReader:
            return read_service(caller())

        async def summaries(
            session: AsyncConnection, params: tuple[Owner, TimeWindow], keys: list[Any]
        ) -> dict[Any, Summary]:
            owner, window = params
            return await reader().summaries(session, owner, window, keys)

        async def buckets(
            session: AsyncConnection,
            params: tuple[Owner, TimeWindow, str, str, int],
            keys: list[Any],
        ) -> dict[Any, list[Bucket]]:
            owner, window, unit, zone_name, limit = params
            return await reader().buckets(
                session, owner, window, unit, zone_name, limit, keys
            )

        async def users(
            session: AsyncConnection,
            params: tuple[TimeWindow, UserOrder, int, int],
            keys: list[Any],
        ) -> dict[Any, Page[tuple[str, str]]]:
            window, order, first, offset = params
            return dict(
                await reader().users(session, window, order, first, offset, keys)
            )

        async def interactions(
            session: AsyncConnection,
            params: tuple[Owner, TimeWindow, int, int],
            keys: list[Any],
        ) -> dict[Any, Page[InteractionRow]]:
            owner, window, first, offset = params
            return await reader().interaction_pages(
                session, owner, window, first, offset, keys
            )

        async def interaction_counts(
            session: AsyncConnection, params: tuple[Owner, TimeWindow], keys: list[Any]
        ) -> dict[Any, int]:
            owner, window = params
            return await reader().interaction_counts(session, owner, window, keys)

        async def records(
            session: AsyncSession,
            params: tuple[str | None, int, int],
            keys: list[Any],
        ) -> dict[Any, list[tuple[UsageRecord, int]]]:
            source, first, offset = params
            return await reader().records(session, source, first, offset, keys)

        async def tenants(session: AsyncConnection, keys: list[Any]) -> dict[Any, bool]:
            found = await reader().existing_tenants(session, keys)
            return {key: True for key in found}

        async def user_exists(
            session: AsyncConnection, keys: list[Any]
        ) -> dict[Any, bool]:
            found = await reader().existing_users(session, keys)
            return {key: True for key in found}

        async def interaction(session: AsyncSession, keys: list[Any]) -> dict[Any, Any]:
            return dict(await OwnerLookup(caller()).interactions(session, keys))

        async def jobs(session: AsyncSession, keys: list[Any]) -> dict[Any, Any]:
            return dict(await JobReader(caller()).jobs(session, keys))

        async def job_usage(session: AsyncSession, keys: list[Any]) -> dict[Any, Any]:
            return dict(await JobReader(caller()).usage(session, keys))

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
        self.records: DataLoader[Any, list[tuple[UsageRecord, int]]] = _grouped_loader(
            db, records, list, orm=True
        )
        self.tenant_exists: DataLoader[str, bool | None] = _simple_loader(db, tenants)
        self.user_exists: DataLoader[tuple[str, str], bool | None] = _simple_loader(
            db, user_exists
        )
        # Any role: mutation results and jobs show their interaction's ids.
        self.interaction: DataLoader[str, Interaction | None] = _simple_loader(
            db, interaction, orm=True
        )
        self.job: DataLoader[Any, Job | None] = _simple_loader(db, jobs, orm=True)
        self.job_usage: DataLoader[Any, UsageRecord | None] = _simple_loader(
            db, job_usage, orm=True
        )
