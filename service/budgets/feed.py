"""Live budget alerts for the `budgetAlerts(tenantId:)` subscription.

An after-commit handler (service/budgets/handlers.py) hands each new alert to
the feed of this process, which passes it to that tenant's subscribers.
Alerts decided in another process (a separate worker) are not announced here;
like `usageRecorded`, delivery is at most once, and a subscriber that falls
`QUEUE_SIZE` alerts behind is ended with an error.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from service.errors import AppError

QUEUE_SIZE = 1000


class SubscriberTooSlow(AppError):
    """A subscriber fell too far behind and was dropped."""

    code = "INTERNAL"


@dataclass(frozen=True)
class AlertFacts:
    """A committed alert as subscribers see it."""

    alert_id: str
    budget_id: str
    tenant_id: str
    threshold: int
    period_start: datetime
    crossed_at: datetime
    used: Decimal


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[AlertFacts] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.overflowed = False

    def put(self, alert: AlertFacts) -> None:
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.overflowed = True

    async def alerts(self) -> AsyncIterator[AlertFacts]:
        while True:
            if self.overflowed and self.queue.empty():
                raise SubscriberTooSlow(
                    "this subscription fell behind and was ended; subscribe again"
                )
            yield await self.queue.get()


class AlertFeed:
    """Subscribers per tenant, in this process."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[_Subscriber]] = defaultdict(set)

    def subscriber_count(self, tenant_id: str) -> int:
        """How many subscriptions of `tenant_id` this process holds."""
        return len(self._subscribers.get(tenant_id, ()))

    def publish(self, alert: AlertFacts) -> None:
        """Hand `alert` to its tenant's subscribers."""
        for subscriber in list(self._subscribers.get(alert.tenant_id, ())):
            subscriber.put(alert)

    @asynccontextmanager
    async def subscribe(
        self, tenant_id: str
    ) -> AsyncIterator[AsyncIterator[AlertFacts]]:
        """The alerts of `tenant_id` from now on, while the block runs."""
        subscriber = _Subscriber()
        self._subscribers[tenant_id].add(subscriber)
        try:
            yield subscriber.alerts()
        finally:
            self._subscribers[tenant_id].discard(subscriber)
            if not self._subscribers[tenant_id]:
                del self._subscribers[tenant_id]


alert_feed = AlertFeed()
