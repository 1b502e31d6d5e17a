"""What the app holds from startup to shutdown, typed (`request.app` routes share it)."""

from __future__ import annotations

from service.config import Settings
from service.db.session import Database
from service.live.feed import UsageFeed
from service.ratelimit import RateLimiter


class NotStarted(RuntimeError):
    """The app's lifespan has not started (or has ended)."""


class AppState:
    """Settings, the rate limiter, and the resources the lifespan opens.

    `db` and `feed` exist between startup and shutdown; reading them outside
    that raises `NotStarted` rather than handing out None.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        rate_limiter: RateLimiter | None = None,
        db: Database | None = None,
        feed: UsageFeed | None = None,
    ) -> None:
        self.settings = settings
        self.rate_limiter = rate_limiter
        self._db = db
        self._feed = feed

    @property
    def db(self) -> Database:
        """The database (engine and session factories)."""
        if self._db is None:
            raise NotStarted("the database is opened by the app's lifespan")
        return self._db

    @property
    def feed(self) -> UsageFeed:
        """This process's live usage feed."""
        if self._feed is None:
            raise NotStarted("the live feed is started by the app's lifespan")
        return self._feed

    async def start(self) -> None:
        """Open the database and start the live feed (lifespan startup)."""
        settings = self.settings
        self._db = Database.from_settings(settings, api=True)
        self._feed = UsageFeed(self._db)
        await self._feed.start()

    async def close(self) -> None:
        """Stop the feed and close the database (lifespan shutdown)."""
        try:
            if self._feed is not None:
                await self._feed.close()
        finally:
            if self._db is not None:
                await self._db.dispose()
            self._feed = None
            self._db = None
