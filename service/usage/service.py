"""Ledger operations: register interactions and record usage, exactly once.

Each runs in the caller's unit of work (service/uow.py) and raises what it did:
`UsageRecorded` for newly stored records, `InteractionMoved` when an
interaction gets its first or a new owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.auth.principal import Principal
from service.db.base import new_uuid, utcnow
from service.db.models import UsageRecord
from service.db.types import credits_text
from service.errors import AppError, BadUserInput, Conflict, Forbidden
from service.events import InteractionMoved, UsageRecorded
from service.observability import metrics
from service.uow import UnitOfWork
from service.usage import rollups
from service.usage.queries.models import InteractionRow
from service.usage.records import (
    IngestOutcome,
    RecordOutcome,
    RecordRow,
    StoredRecord,
    UsageIn,
)
from service.usage.repository import UsageRepository
from service.validation import check_created_at, check_credits, check_id

MAX_BATCH = 10_000
# What a tenant-bound key hears for any interaction it may not touch, whether
# it is registered to another tenant or, unregistered, pinned to one by usage
# that tenant's key wrote: the same code and words, so the answer says "taken"
# and never by whom or how (README, "Interaction ids are first come, first served").
TAKEN = "this interaction belongs to another tenant"


def _prefixed(prefix: str, error: AppError) -> AppError:
    """The same error with `prefix` (e.g. "records[3]") in front of its message."""
    if isinstance(error, BadUserInput):
        return BadUserInput(f"{prefix}.{error.field}", error.message.split(": ", 1)[1])
    return type(error)(f"{prefix}: {error.message}", **error.extensions)


class UsageService:
    """The ledger's write side; callers own the unit of work."""

    async def register_interaction(
        self,
        uow: UnitOfWork,
        principal: Principal,
        *,
        interaction_id: str,
        tenant_id: str,
        user_id: str,
        created_at: datetime | None = None,
    ) -> InteractionRow:
        """Map a Corti interaction to a tenant and user (moving its usage if needed)."""
        interaction_id = check_id("interactionId", interaction_id)
        tenant_id = check_id("tenantId", tenant_id)
        user_id = check_id("userId", user_id)
        if created_at is not None:
            created_at = check_created_at("createdAt", created_at, utcnow())
        principal.require_write()
        principal.require_tenant(tenant_id)
        repo = UsageRepository(uow.session)
        await repo.lock_interactions([interaction_id])
        # Registered: its tenant's. Unregistered: pinned to the tenant whose
        # bound key wrote usage for it. Either way one answer (see TAKEN).
        if principal.tenant_id is not None and await repo.pinned_elsewhere(
            [interaction_id], principal.tenant_id
        ):
            pinned = await repo.lock_interaction(interaction_id)
            if pinned is None or not principal.sees_tenant(pinned.tenant_id):
                raise Forbidden(TAKEN)
        await repo.ensure_user(tenant_id, user_id)
        created_at_or_now = created_at or utcnow()
        created = await repo.insert_interaction(
            interaction_id, tenant_id, user_id, created_at_or_now
        )
        new_owner = (tenant_id, user_id)
        if created:
            # The row is what was just inserted (no read back).
            records = await repo.attribute_records(interaction_id, tenant_id, user_id)
            uow.raise_event(InteractionMoved(interaction_id, None, new_owner, records))
            return InteractionRow(interaction_id, tenant_id, user_id, created_at_or_now)
        row = await repo.lock_interaction(interaction_id)
        assert row is not None  # it was there; interactions are never deleted
        if not principal.sees_tenant(row.tenant_id):
            raise Forbidden(TAKEN)
        old_owner = (row.tenant_id, row.user_id)
        moved = old_owner != new_owner
        if moved or (created_at is not None and created_at != row.created_at):
            await repo.move_interaction(interaction_id, tenant_id, user_id, created_at)
            if moved:
                records = await repo.attribute_records(
                    interaction_id, tenant_id, user_id
                )
                uow.raise_event(
                    InteractionMoved(interaction_id, old_owner, new_owner, records)
                )
            row = InteractionRow(
                interaction_id, tenant_id, user_id, created_at or row.created_at
            )
        return row

    async def record(
        self, uow: UnitOfWork, principal: Principal, usage: UsageIn
    ) -> RecordOutcome:
        """Store one usage record; a redelivery with the same credits is a no-op."""
        outcome = await self.ingest(uow, principal, [usage], single=True)
        return RecordOutcome(
            record=outcome.records[0], duplicate=outcome.duplicates == 1
        )

    async def ingest(
        self,
        uow: UnitOfWork,
        principal: Principal,
        batch: Sequence[UsageIn],
        *,
        single: bool = False,
    ) -> IngestOutcome:
        """Store a batch all-or-nothing; errors name the index of the bad record.

        Counted in `ledger_usage_records_total` when the transaction commits
        (refusals at once: they write nothing).
        """
        sources = [usage.source.value for usage in batch]
        try:
            outcome = await self._ingest(uow, principal, batch, single=single)
        except Conflict:
            metrics.count_refused(sources, "conflict")
            raise
        except AppError:
            metrics.count_refused(sources, "rejected")
            raise
        new = {id(r): r for r in outcome.records if isinstance(r, StoredRecord)}
        metrics.count_stored(uow.session, sources, list(new.values()))
        return outcome

    async def _ingest(
        self,
        uow: UnitOfWork,
        principal: Principal,
        batch: Sequence[UsageIn],
        *,
        single: bool = False,
    ) -> IngestOutcome:
        principal.require_write()
        if len(batch) > MAX_BATCH:
            raise BadUserInput("records", f"at most {MAX_BATCH} records per call")
        received = utcnow()
        rows: list[dict[str, Any]] = []
        first_index: dict[tuple[str, str], int] = {}
        for index, usage in enumerate(batch):
            try:
                row = self._validated_row(usage, received, principal)
            except AppError as error:
                raise (
                    error if single else _prefixed(f"records[{index}]", error)
                ) from None
            key = (row["source"], row["external_id"])
            if key in first_index:
                _check_same(rows[first_index[key]], row, None if single else index)
                continue
            first_index[key] = len(rows)
            rows.append(row)
        repo = UsageRepository(uow.session)
        interaction_ids = sorted(
            {r["interaction_id"] for r in rows if r["interaction_id"] is not None}
        )
        # Serialises with (re-)registration of the same interactions, so the
        # owner copied onto each record is the one committed with it. A bound
        # key's usage can pin an unregistered interaction, so those are locked
        # exclusively (one tenant's pin is decided before another's check).
        exclusive: list[str] = []
        if principal.tenant_id is not None and interaction_ids:
            known = await repo.interaction_owners(interaction_ids)
            exclusive = [i for i in interaction_ids if i not in known]
        await repo.lock_interactions(interaction_ids, shared=True, exclusive=exclusive)
        owners = await repo.interaction_owners(interaction_ids)
        if principal.tenant_id is not None:
            tenants = {i: owner[0] for i, owner in owners.items()}
            unregistered = [i for i in interaction_ids if i not in owners]
            for pinned in await repo.pinned_elsewhere(
                unregistered, principal.tenant_id
            ):
                tenants[pinned] = ""  # no tenant a bound key sees
            self._check_tenants(tenants, batch, principal, single)
        # Usage attributed directly: its tenant and user exist from then on
        # (created like registerInteraction creates them).
        for tenant_id, user_id in sorted(
            {
                (r["tenant_id"], r["user_id"])
                for r in rows
                if r["interaction_id"] is None
            }
        ):
            await repo.ensure_user(tenant_id, user_id)
        for row in rows:
            if row["interaction_id"] is not None:
                row["tenant_id"], row["user_id"] = owners.get(
                    row["interaction_id"], (None, None)
                )
        inserted = await repo.insert_records(rows)
        earliest: dict[str, datetime] = {}
        latest: dict[str, datetime] = {}
        for row in rows:
            if (
                row["tenant_id"] is not None
                and row["interaction_id"] is not None
                and (row["source"], row["external_id"]) in inserted
            ):
                interaction, at = row["interaction_id"], row["created_at"]
                last, first = latest.get(interaction), earliest.get(interaction)
                latest[interaction] = at if last is None or at > last else last
                earliest[interaction] = at if first is None or at < first else first
        await repo.touch_usage_span(earliest, latest)
        keys = [(r["source"], r["external_id"]) for r in rows]
        missing = [key for key in keys if key not in inserted]
        existing = await repo.records_by_key(missing) if missing else {}
        if principal.tenant_id is not None and existing:
            await self._check_existing(repo, existing, batch, principal, single)
        stored: dict[tuple[str, str], RecordRow] = {}
        new: list[StoredRecord] = []
        for key, row in zip(keys, rows, strict=True):
            if key in inserted:
                stored[key] = record = StoredRecord(**row)
                new.append(record)
            else:
                old = existing[key]
                _check_same(
                    _as_row(old), row, None if single else _index_of(batch, key)
                )
                stored[key] = old
        # Last, so the hot rollup rows stay locked only until the commit.
        await rollups.add_inserted(
            uow.session,
            [row for row in rows if (row["source"], row["external_id"]) in inserted],
            earliest,
            latest,
        )
        if new:
            uow.raise_event(UsageRecorded(new))
        records = [stored[(u.source.value, u.external_id)] for u in batch]
        accepted = len(inserted)
        return IngestOutcome(
            accepted=accepted, duplicates=len(batch) - accepted, records=records
        )

    def _validated_row(
        self, usage: UsageIn, received: datetime, principal: Principal
    ) -> dict[str, Any]:
        interaction_id, tenant_id, user_id = _owner_of(usage, principal)
        return {
            "id": new_uuid(),
            "source": usage.source.value,
            "interaction_id": interaction_id,
            "external_id": check_id("externalId", usage.external_id),
            "credits": check_credits("credits", usage.credits),
            "created_at": (
                received
                if usage.created_at is None
                else check_created_at("createdAt", usage.created_at, received)
            ),
            "received_at": received,
            "writer_tenant_id": principal.tenant_id,
            "tenant_id": tenant_id,
            "user_id": user_id,
        }

    def _check_tenants(
        self,
        tenants: dict[str, str],
        batch: Sequence[UsageIn],
        principal: Principal,
        single: bool,
    ) -> None:
        for index, usage in enumerate(batch):
            if usage.interaction_id is None:
                continue  # a direct owner was checked with the input
            owner = tenants.get(usage.interaction_id)
            if owner is not None and not principal.sees_tenant(owner):
                error = Forbidden(TAKEN)
                raise error if single else _prefixed(f"records[{index}]", error)

    async def _check_existing(
        self,
        repo: UsageRepository,
        existing: dict[tuple[str, str], UsageRecord],
        batch: Sequence[UsageIn],
        principal: Principal,
        single: bool,
    ) -> None:
        """A bound key may not redeliver another tenant's record (source, external id).

        Otherwise the duplicate or CONFLICT answer would show that tenant's
        interaction id and credits. A record belongs to the tenant of its
        interaction, or while unregistered to the tenant of the key that wrote it.
        """
        owners = await repo.interaction_tenants(
            [
                old.interaction_id
                for old in existing.values()
                if old.interaction_id is not None
            ]
        )
        for key, old in existing.items():
            if old.interaction_id is None:
                owner: str | None = old.tenant_id
            else:
                owner = owners.get(old.interaction_id, old.writer_tenant_id)
            if owner is not None and not principal.sees_tenant(owner):
                error = Forbidden("this usage record belongs to another tenant")
                index = _index_of(batch, key)
                raise error if single else _prefixed(f"records[{index}]", error)


def _as_row(record: UsageRecord) -> dict[str, Any]:
    return {
        "source": record.source,
        "external_id": record.external_id,
        "interaction_id": record.interaction_id,
        "credits": record.credits,
        "tenant_id": record.tenant_id,
        "user_id": record.user_id,
    }


def _owner_of(
    usage: UsageIn, principal: Principal
) -> tuple[str | None, str | None, str | None]:
    """(interaction_id, tenant_id, user_id): exactly one of an interaction, or a
    tenant with a user (attributed directly; a bound key only to its tenant)."""
    direct = usage.tenant_id is not None or usage.user_id is not None
    if usage.interaction_id is not None:
        if direct:
            raise BadUserInput(
                "interactionId",
                "give either interactionId or tenantId with userId, not both",
            )
        return check_id("interactionId", usage.interaction_id), None, None
    if not direct:
        raise BadUserInput(
            "interactionId", "give interactionId, or tenantId with userId"
        )
    if usage.tenant_id is None:
        raise BadUserInput("tenantId", "required with userId")
    if usage.user_id is None:
        raise BadUserInput("userId", "required with tenantId")
    tenant_id = check_id("tenantId", usage.tenant_id)
    user_id = check_id("userId", usage.user_id)
    if not principal.sees_tenant(tenant_id):
        raise Forbidden("this usage belongs to another tenant")
    return None, tenant_id, user_id


def _owner_text(row: dict[str, Any]) -> str:
    if row["interaction_id"] is not None:
        return f"interaction {row['interaction_id']!r}"
    return f"tenant {row['tenant_id']!r} user {row['user_id']!r}"


def _index_of(batch: Sequence[UsageIn], key: tuple[str, str]) -> int:
    return next(
        i for i, u in enumerate(batch) if (u.source.value, u.external_id) == key
    )


def _check_same(old: dict[str, Any], new: dict[str, Any], index: int | None) -> None:
    """A redelivery must repeat the credits and interaction it was first sent with."""
    where = "" if index is None else f"records[{index}]: "
    label = f"{new['source']} {new['external_id']!r}"
    if old["credits"] != new["credits"]:
        raise Conflict(
            f"{where}{label} is already recorded with credits "
            f"{credits_text(old['credits'])}",
            existingCredits=credits_text(old["credits"]),
        )
    if old["interaction_id"] != new["interaction_id"] or (
        old["interaction_id"] is None
        and (old["tenant_id"], old["user_id"]) != (new["tenant_id"], new["user_id"])
    ):
        raise Conflict(f"{where}{label} is already recorded for {_owner_text(old)}")


usage_service = UsageService()
