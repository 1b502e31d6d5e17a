"""Live budget alerts for the `budgetAlerts(tenantId:)` subscription.

On PostgreSQL the transaction that decides an alert sends it with
`NOTIFY budget_alerts` (service/budgets/handlers.py), delivered at commit to
every API process's listener (the live feed's LISTEN connection,
`service.live.feed.listen_also`), so an alert decided by any process (another
API process, a worker) reaches the subscribers of all of them. On SQLite an
after-commit handler hands it to this process's feed. Like `usageRecorded`,
delivery is at most once (alerts sent while a listener reconnects are lost),
and a subscriber that falls `QUEUE_SIZE` alerts behind is ended with an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from service.errors import AppError

QUEUE_SIZE = 1000
CHANNEL = "budget_alerts"

log = logging.getLogger("service.budgets")


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

    def to_payload(self) -> str:
        """JSON for one NOTIFY (exact `used` as text, ISO times); well under 8000 bytes."""
        return json.dumps(
            {
                "alertId": self.alert_id,
                "budgetId": self.budget_id,
                "tenantId": self.tenant_id,
                "threshold": self.threshold,
                "periodStart": self.period_start.isoformat(),
                "crossedAt": self.crossed_at.isoformat(),
                "used": str(self.used),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_payload(cls, payload: str) -> AlertFacts:
        """The inverse of `to_payload`."""
        data = json.loads(payload)
        return cls(
            alert_id=str(data["alertId"]),
            budget_id=str(data["budgetId"]),
            tenant_id=str(data["tenantId"]),
            threshold=int(data["threshold"]),
            period_start=datetime.fromisoformat(str(data["periodStart"])),
            crossed_at=datetime.fromisoformat(str(data["crossedAt"])),
            used=Decimal(str(data["used"])),
        )


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

    def receive(self, payload: str) -> None:
        """Publish the alert of one `budget_alerts` notification."""
        try:
            alert = AlertFacts.from_payload(payload)
        except (ValueError, KeyError, TypeError, ArithmeticError):
            log.warning("ignoring a malformed %s notification", CHANNEL)
            return
        self.publish(alert)

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
