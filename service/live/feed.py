"""Live usage: committers publish, subscribers of any API process receive.

Every unit of work that raises `UsageRecorded` announces its records
(service/live/handlers.py). On PostgreSQL `notify_in_transaction` sends
`NOTIFY usage_recorded` inside the writing transaction, which PostgreSQL
delivers at commit (and never for a rollback); every API process's `UsageFeed`
listens on a dedicated asyncpg connection, so a record written by any process
(API or worker) reaches the subscribers of all of them. On SQLite, which has
no notifications, `publish_here` hands the events to the feeds of the
committing process only, after the commit (it finds them by database URL).

Delivery is at most once, within milliseconds of the commit: a subscriber
that falls `QUEUE_SIZE` events behind is ended with an error (resubscribe and
re-read totals), and events sent while a listener reconnects are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, Text, bindparam, column, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.direct import Direct
from service.db.session import Database
from service.errors import AppError, Unavailable
from service.events import RecordFacts
from service.live.events import UsageEvent, parse_payload, payloads
from service.observability.metrics import LIVE_SUBSCRIBERS

log = logging.getLogger("service.live")

CHANNEL = "usage_recorded"
QUEUE_SIZE = 1000
LISTEN_READY_TIMEOUT = 10.0
HEALTH_CHECK_SECONDS = 30.0
# Short, so the feed is back within about 2 s of the database (one connection
# attempt per wait and process costs next to nothing).
RECONNECT_SECONDS = (0.25, 0.5, 1.0, 2.0)

# Running feeds by database, for in-process delivery on SQLite.
_FEEDS: dict[str, set[UsageFeed]] = defaultdict(set)
# Other channels every feed's listener also LISTENs on (`listen_also`).
_CHANNELS: dict[str, Callable[[str], None]] = {}


def listen_also(channel: str, on_payload: Callable[[str], None]) -> None:
    """Have every API process's listener hand `channel`'s payloads to `on_payload`.

    For other domains' live events (budget alerts): they NOTIFY `channel` in
    their writing transaction and share the feed's one LISTEN connection, its
    reconnects and its readiness (`UsageFeed.wait_listening`). `on_payload`
    runs on the event loop and must not block; its errors are logged.
    """
    _CHANNELS[channel] = on_payload


class LiveUnavailable(Unavailable):
    """The feed cannot listen for events (database unreachable)."""


class SubscriberTooSlow(AppError):
    """A subscriber fell too far behind and was dropped."""

    code = "INTERNAL"


def _database_key(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=True)


class _Subscriber:
    """One subscription's bounded queue."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[UsageEvent] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def put(self, event: UsageEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def events(self) -> AsyncIterator[UsageEvent]:
        while True:
            if self.overflowed and self.queue.empty():
                raise SubscriberTooSlow(
                    "this subscription fell behind and was ended; subscribe again"
                )
            yield await self.queue.get()


class UsageFeed:
    """The live subscribers of one API process, by tenant."""

    def __init__(self, db: Database, queue_size: int = QUEUE_SIZE) -> None:
        self.db = db
        self.queue_size = queue_size
        self._subscribers: dict[str, set[_Subscriber]] = defaultdict(set)
        self._listener: _PostgresListener | None = None

    async def start(self) -> None:
        """Start receiving events (on PostgreSQL: connect and LISTEN, in the background)."""
        if self.db.dialect == "postgresql":
            self._listener = _PostgresListener(self.db, self.deliver)
            self._listener.start()
        _FEEDS[_database_key(self.db)].add(self)

    async def close(self) -> None:
        """Stop listening; subscriptions in flight end with the process."""
        _FEEDS[_database_key(self.db)].discard(self)
        if self._listener is not None:
            await self._listener.stop()

    def subscriber_count(self, tenant_id: str | None = None) -> int:
        """Open subscriptions (of one tenant, or of all)."""
        if tenant_id is not None:
            return len(self._subscribers.get(tenant_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    async def wait_listening(self) -> None:
        """Return once notifications reach this process (at once on SQLite).

        Raises `LiveUnavailable` when the listener cannot connect in time.
        """
        if self._listener is not None:
            await self._listener.wait_ready()

    @asynccontextmanager
    async def subscribe(
        self, tenant_id: str
    ) -> AsyncIterator[AsyncIterator[UsageEvent]]:
        """Events of one tenant from now on, while the context is open."""
        await self.wait_listening()
        subscriber = _Subscriber(self.queue_size)
        self._subscribers[tenant_id].add(subscriber)
        LIVE_SUBSCRIBERS.inc()
        try:
            yield subscriber.events()
        finally:
            LIVE_SUBSCRIBERS.dec()
            subscribers = self._subscribers.get(tenant_id)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[tenant_id]

    def deliver(self, events: Iterable[UsageEvent]) -> None:
        """Hand events to this process's subscribers of their tenants."""
        for event in events:
            for subscriber in tuple(self._subscribers.get(event.tenant_id, ())):
                subscriber.put(event)


class _PostgresListener:
    """LISTEN on a dedicated connection; reconnects when it is lost."""

    def __init__(self, db: Database, deliver: Any) -> None:
        url = db.engine.url.set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.deliver = deliver
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.conn: Any = None
        self.stopping = False

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="usage-feed-listener")

    async def stop(self) -> None:
        self.stopping = True
        if self.conn is not None and not self.conn.is_closed():
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=5)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def wait_ready(self) -> None:
        try:
            async with asyncio.timeout(LISTEN_READY_TIMEOUT):
                await self.ready.wait()
        except TimeoutError:
            raise LiveUnavailable("live updates are unavailable right now") from None

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            events = parse_payload(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed %s notification", CHANNEL)
            return
        self.deliver(events)

    async def _run(self) -> None:
        failures = 0
        while not self.stopping:
            try:
                await self._listen()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - reconnect on any failure
                if failures == 0:  # once per outage, not per attempt
                    log.warning("usage feed listener lost its connection: %r", error)
            self.ready.clear()
            if self.stopping:
                return
            delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def _listen(self) -> None:
        conn = self.conn = await asyncpg.connect(self.dsn)
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            for channel, on_payload in _CHANNELS.items():
                await conn.add_listener(channel, _guarded(channel, on_payload))
            self.ready.set()
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HEALTH_CHECK_SECONDS):
                        await closed.wait()
                if not closed.is_set():
                    await conn.fetchval("SELECT 1", timeout=HEALTH_CHECK_SECONDS)
        finally:
            self.ready.clear()
            if not conn.is_closed():
                conn.terminate()


def _guarded(channel: str, on_payload: Callable[[str], None]) -> Any:
    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            on_payload(payload)
        except Exception:  # one bad payload must not stop the listener
            log.exception("could not handle a %s notification", channel)

    return on_notify


def running_feeds() -> list[UsageFeed]:
    """Every started feed of this process."""
    return [feed for feeds in _FEEDS.values() for feed in feeds]


# One `pg_notify` per payload in one statement (one round trip for a batch);
# built once, for every channel.
_NOTIFY = Direct(
    select(func.pg_notify(bindparam("channel", type_=Text), column("p"))).select_from(
        func.unnest(bindparam("payloads", type_=ARRAY(Text))).alias("p")
    )
)


async def notify(session: AsyncSession, channel: str, messages: Sequence[str]) -> None:
    """NOTIFY `channel` with each of `messages` in the session's transaction.

    PostgreSQL delivers them when, and only if, the transaction commits.
    """
    if messages:
        await _NOTIFY.run(session, {"channel": channel, "payloads": list(messages)})


async def notify_in_transaction(
    records: Sequence[RecordFacts], session: AsyncSession
) -> None:
    """Queue the NOTIFY of `records` in the writing transaction (PostgreSQL).

    PostgreSQL delivers it when, and only if, the transaction commits, so the
    write costs no second transaction and no extra connection checkout, and a
    rolled-back write announces nothing. Each event names the tenant copied
    onto the record when it was written (under the interaction's lock, see
    UsageService), so nothing is read back; records of interactions not
    registered yet have no tenant and are not announced.
    """
    await notify(session, CHANNEL, list(payloads(records)))


def publish_here(records: Sequence[RecordFacts], db: Database) -> None:
    """Deliver committed `records` to this process's feeds (SQLite: no NOTIFY).

    `db` is the database the records were committed to; feeds are found by
    its URL. Never raises: the records are stored whether or not anyone hears
    of them.
    """
    feeds = [
        feed for feed in _FEEDS.get(_database_key(db), ()) if feed.subscriber_count()
    ]
    if not feeds:
        return
    events = _events(records)
    if not events:
        return
    for feed in feeds:
        try:
            feed.deliver(events)
        except Exception:  # publishing must not fail the write
            log.exception("could not publish %d usage record(s)", len(records))


def _events(records: Sequence[RecordFacts]) -> list[UsageEvent]:
    return [
        UsageEvent(
            id=str(record.id),
            tenant_id=record.tenant_id,
            interaction_id=record.interaction_id,
            source=record.source,
            external_id=record.external_id,
            credits=record.credits,
            created_at=record.created_at,
            received_at=record.received_at,
            user_id=record.user_id,
        )
        for record in records
        if record.tenant_id is not None
    ]
