"""Usage reads for one caller: role and tenant scope are applied here, once.

The GraphQL loaders and root fields read usage only through these classes
(never through `service.usage.queries` directly), so no resolver re-applies
"a key bound to a tenant sees that tenant alone":

- `read_service(principal)` is the `UsageReader` of a caller that may read
  usage (admin, reader); for any other role it raises FORBIDDEN.
- `OwnerLookup(principal)` finds interactions by id for any role, within the
  caller's tenant: mutation results and jobs show their interaction's ids to
  ingest keys too.

Every method answers for a batch of keys in one statement (the loaders' batch
session is passed in), and keys outside the caller's tenant are left out of
the answer, as if they did not exist.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.db.models import Interaction, UsageRecord
from service.db.session import Reads
from service.errors import Forbidden
from service.usage import queries
from service.usage.queries.models import (
    Bucket,
    InteractionRow,
    Owner,
    Page,
    Summary,
    TimeWindow,
    UserOrder,
)


def read_service(principal: Principal) -> UsageReader:
    """The caller's usage reads; FORBIDDEN unless its role may read usage."""
    return UsageReader(principal)


class OwnerLookup:
    """Interactions by id, within the caller's tenant, for every role."""

    def __init__(self, principal: Principal) -> None:
        self.scope = principal.tenant_id

    async def interactions(
        self, session: AsyncSession, ids: Sequence[str]
    ) -> dict[str, Interaction]:
        """The registered interactions among `ids` that the caller may see."""
        found = await queries.interactions_by_id(session, ids)
        if self.scope is None:
            return found
        return {k: row for k, row in found.items() if row.tenant_id == self.scope}


class UsageReader:
    """Credits, buckets, pages and records, as one caller may see them."""

    def __init__(self, principal: Principal) -> None:
        principal.require_read()
        self.principal = principal
        self.scope = principal.tenant_id

    def _visible(self, owner: Owner, keys: Sequence[Any]) -> list[Any]:
        """Tenant and user keys inside the caller's tenant."""
        if self.scope is None or owner is Owner.INTERACTION:
            return list(keys)
        if owner is Owner.TENANT:
            return [key for key in keys if key == self.scope]
        return [key for key in keys if key[0] == self.scope]

    def watch(self, tenant_id: str) -> str:
        """The tenant whose live feed the caller may follow; FORBIDDEN if not."""
        if self.scope is not None and tenant_id != self.scope:
            raise Forbidden("this key is bound to another tenant")
        return tenant_id

    async def tenants(
        self, session: AsyncSession, first: int, offset: int
    ) -> Page[str]:
        """The tenants the caller sees, in id order."""
        return await queries.tenants_page(session, self.scope, first, offset)

    async def existing_tenants(self, session: Reads, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are tenants the caller sees."""
        visible = self._visible(Owner.TENANT, ids)
        return await queries.existing_tenants(session, visible) if visible else set()

    async def existing_users(
        self, session: Reads, keys: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which (tenant_id, user_id) pairs are users the caller sees."""
        visible = self._visible(Owner.USER, keys)
        return await queries.existing_users(session, visible) if visible else set()

    async def summaries(
        self,
        session: Reads,
        owner: Owner,
        window: TimeWindow,
        keys: Sequence[Hashable],
    ) -> dict[Hashable, Summary]:
        """Credits per source of each owner inside the window."""
        visible = self._visible(owner, keys)
        if not visible:
            return {}
        return await queries.credit_summaries(
            session, owner, visible, window, tenant=self.scope
        )

    async def buckets(
        self,
        session: Reads,
        owner: Owner,
        window: TimeWindow,
        unit: str,
        zone_name: str,
        limit: int,
        keys: Sequence[Hashable],
    ) -> dict[Hashable, list[Bucket]]:
        """Every time bucket of the window for each tenant or user."""
        visible = self._visible(owner, keys)
        if not visible:
            return {}
        return await queries.usage_buckets(
            session, owner, visible, window, unit, zone_name, limit
        )

    async def users(
        self,
        session: Reads,
        window: TimeWindow,
        order: UserOrder,
        first: int,
        offset: int,
        tenant_ids: Sequence[str],
    ) -> dict[str, Page[tuple[str, str]]]:
        """A page of each tenant's users."""
        visible = self._visible(Owner.TENANT, tenant_ids)
        if not visible:
            return {}
        return await queries.users_pages(session, visible, window, order, first, offset)

    async def interaction_pages(
        self,
        session: Reads,
        owner: Owner,
        window: TimeWindow,
        first: int,
        offset: int,
        keys: Sequence[Hashable],
    ) -> dict[Hashable, Page[InteractionRow]]:
        """A page of each tenant's or user's interactions."""
        visible = self._visible(owner, keys)
        if not visible:
            return {}
        return await queries.interactions_pages(
            session, owner, visible, window, first, offset
        )

    async def interaction_counts(
        self,
        session: Reads,
        owner: Owner,
        window: TimeWindow,
        keys: Sequence[Hashable],
    ) -> dict[Hashable, int]:
        """How many interactions each tenant or user has (in the window)."""
        visible = self._visible(owner, keys)
        if not visible:
            return {}
        return await queries.interaction_counts(session, owner, visible, window)

    async def records(
        self,
        session: AsyncSession,
        source: str | None,
        first: int,
        offset: int,
        interaction_ids: Sequence[str],
    ) -> dict[str, list[tuple[UsageRecord, int]]]:
        """A page of each interaction's usage records (of one source, if given),
        each with its position."""
        return dict(
            await queries.records_of(
                session, interaction_ids, source, first, offset, tenant=self.scope
            )
        )
