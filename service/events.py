"""Domain events and who handles them.

A domain raises an event on its unit of work (`uow.raise_event(...)`, see
service/uow.py); the consuming domain declares its handler next to its own code:

    @in_transaction(UsageRecorded)
    async def check_budgets(event: UsageRecorded, uow: UnitOfWork) -> None: ...

    @after_commit(UsageRecorded)
    async def announce(event: UsageRecorded, db: Database) -> None: ...

In-transaction handlers run inside the writing transaction, just before its
commit (their writes, raised events and enqueued jobs commit with it; their
errors roll everything back). After-commit handlers run once the transaction
has committed; their errors are logged and never undo it. Neither kind runs
for the events of a rolled-back unit. A handler registered for a base class
receives its subclasses too. Modules that register handlers are listed in
service/domains.py, which the app and the worker import at start.

This module names no domain package (the events describe their records by the
`RecordFacts` protocol), so every domain can import it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    from service.db.session import Database
    from service.uow import UnitOfWork


class RecordFacts(Protocol):
    """What an event tells about a usage record (`service.usage.records.RecordRow`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def source(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def interaction_id(self) -> str | None: ...
    @property
    def credits(self) -> Decimal: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def user_id(self) -> str | None: ...


@dataclass(frozen=True)
class DomainEvent:
    """Something a domain did, announced to the handlers of its type."""


@dataclass(frozen=True)
class UsageRecorded(DomainEvent):
    """Newly stored usage records (never redeliveries), each once.

    Each record carries the owner copied onto it under the interaction's lock
    (`tenant_id`, `user_id`; None while the interaction is unregistered).
    """

    records: Sequence[RecordFacts]


@dataclass(frozen=True)
class InteractionMoved(DomainEvent):
    """An interaction got its first owner or a new one.

    `old_owner` is None when it was unregistered. `records` are the usage
    records that changed owner, as they are now (owned by `new_owner`); they
    arrive in the new owner's periods and leave the old owner's.
    """

    interaction_id: str
    old_owner: tuple[str, str] | None
    new_owner: tuple[str, str]
    records: Sequence[RecordFacts]


@dataclass(frozen=True)
class JobFinished(DomainEvent):
    """A job ended for good: SUCCEEDED or FAILED."""

    job_id: uuid.UUID
    kind: str
    status: str


E = TypeVar("E", bound=DomainEvent)
InTransactionHandler: TypeAlias = Callable[[E, "UnitOfWork"], Awaitable[None]]
AfterCommitHandler: TypeAlias = Callable[[E, "Database"], Awaitable[None]]

_IN_TRANSACTION: dict[type[DomainEvent], list[Callable[..., Awaitable[None]]]] = {}
_AFTER_COMMIT: dict[type[DomainEvent], list[Callable[..., Awaitable[None]]]] = {}


def in_transaction(
    event_type: type[E],
) -> Callable[[InTransactionHandler[E]], InTransactionHandler[E]]:
    """Register `handler(event, uow)` to run in the writing transaction."""

    def register(handler: InTransactionHandler[E]) -> InTransactionHandler[E]:
        _IN_TRANSACTION.setdefault(event_type, []).append(handler)
        return handler

    return register


def after_commit(
    event_type: type[E],
) -> Callable[[AfterCommitHandler[E]], AfterCommitHandler[E]]:
    """Register `handler(event, db)` to run after the transaction committed."""

    def register(handler: AfterCommitHandler[E]) -> AfterCommitHandler[E]:
        _AFTER_COMMIT.setdefault(event_type, []).append(handler)
        return handler

    return register


def remove_handler(handler: Callable[..., Any]) -> None:
    """Unregister `handler` from every event type (tests register their own)."""
    for table in (_IN_TRANSACTION, _AFTER_COMMIT):
        for handlers in table.values():
            while handler in handlers:
                handlers.remove(handler)


def _handlers(
    table: dict[type[DomainEvent], list[Callable[..., Awaitable[None]]]],
    event: DomainEvent,
) -> list[Callable[..., Awaitable[None]]]:
    if not table:
        return []
    found: list[Callable[..., Awaitable[None]]] = []
    for cls in type(event).__mro__:
        found.extend(table.get(cls, ()))
    return found


def in_transaction_handlers(
    event: DomainEvent,
) -> list[Callable[[Any, UnitOfWork], Awaitable[None]]]:
    """The in-transaction handlers of `event`, in registration order."""
    return _handlers(_IN_TRANSACTION, event)


def after_commit_handlers(
    event: DomainEvent,
) -> list[Callable[[Any, Database], Awaitable[None]]]:
    """The after-commit handlers of `event`, in registration order."""
    return _handlers(_AFTER_COMMIT, event)
