"""Budget alerts decided in the transaction that writes usage or moves it.

`UsageRecorded` (new records, never redeliveries) and `InteractionMoved`
(records that arrive at a new owner) both run `alerts.for_usage` inside the
writing unit of work, after the usage service wrote the records and rollups
and took its interaction and rollup locks; the (budget, period) locks come
last, so the lock order is always interaction → rollup rows → budgets, and no
writer holds a budget lock while it waits for another. All such events of one
unit of work are decided together, by the first of them to reach its
handler, so their budget locks are taken in one sorted call.

New alerts are stored, written to the webhook outbox and raised as
`BudgetAlertCrossed` (alerts.announce). On PostgreSQL that event's handler
sends `NOTIFY budget_alerts` in the same transaction, delivered at commit to
the `budgetAlerts` subscriptions of every API process (service/budgets/feed.py);
on SQLite an after-commit handler feeds this process's. A rolled-back write
decides, sends and announces nothing.

Cost without budgets: one indexed query (`budgets` of the records' owners),
none when no record has an owner yet.
"""

from __future__ import annotations

import weakref

from service.budgets import alerts
from service.budgets.alerts import BudgetAlertCrossed
from service.budgets.feed import CHANNEL, alert_feed
from service.db.base import utcnow
from service.db.session import Database
from service.events import (
    InteractionMoved,
    RecordFacts,
    UsageRecorded,
    after_commit,
    in_transaction,
)
from service.live.feed import listen_also, notify
from service.uow import UnitOfWork

# Per open unit of work: ids of the usage events already decided.
_decided: weakref.WeakKeyDictionary[UnitOfWork, set[int]] = weakref.WeakKeyDictionary()


async def _decide(uow: UnitOfWork) -> None:
    seen = _decided.setdefault(uow, set())
    records: list[RecordFacts] = []
    for event in uow.events:
        if id(event) in seen:
            continue
        if isinstance(event, UsageRecorded | InteractionMoved):
            seen.add(id(event))
            records.extend(event.records)
    if not records:
        return
    crossed = await alerts.for_usage(uow.session, records, utcnow())
    await alerts.announce(uow, crossed)


@in_transaction(UsageRecorded)
async def on_usage(event: UsageRecorded, uow: UnitOfWork) -> None:
    """New usage may cross thresholds of its owner's budgets."""
    await _decide(uow)


@in_transaction(InteractionMoved)
async def on_move(event: InteractionMoved, uow: UnitOfWork) -> None:
    """Usage that arrives at its new owner may cross that owner's thresholds.

    The old owner's alerts stay (never taken back).
    """
    await _decide(uow)


# Every API process's live-feed listener also hears the alerts' channel.
listen_also(CHANNEL, alert_feed.receive)


@in_transaction(BudgetAlertCrossed)
async def notify_alerts(event: BudgetAlertCrossed, uow: UnitOfWork) -> None:
    """PostgreSQL: NOTIFY the new alerts in their transaction (sent at commit)."""
    if uow.db.dialect == "postgresql":
        await notify(uow.session, CHANNEL, [a.to_payload() for a in event.alerts])


@after_commit(BudgetAlertCrossed)
async def publish(event: BudgetAlertCrossed, db: Database) -> None:
    """SQLite: committed alerts to this process's `budgetAlerts` subscribers."""
    if db.dialect != "postgresql":
        for alert in event.alerts:
            alert_feed.publish(alert)
