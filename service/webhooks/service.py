"""Webhook endpoints: who may manage them, and their validated writes.

Endpoints are managed with `admin` keys only (a key bound to a tenant: that
tenant's endpoints); an endpoint without a tenant receives every tenant's
events and is managed by unbound admin keys. Callers own the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal, Role
from service.db.base import utcnow
from service.errors import BadUserInput, Forbidden
from service.usage.queries import existing_tenants
from service.validation import check_id
from service.webhooks import urls
from service.webhooks.models import WebhookEndpoint
from service.webhooks.repository import WebhookRepository
from service.webhooks.signing import new_secret

EVENT_THRESHOLD_CROSSED = "budget.threshold_crossed"
EVENT_TYPES = frozenset({EVENT_THRESHOLD_CROSSED})


def require_manage(principal: Principal, tenant_id: str | None) -> None:
    """FORBIDDEN unless `principal` may manage budgets/endpoints of `tenant_id`
    (None: every tenant, for unbound admin keys only)."""
    if principal.role is not Role.ADMIN or principal.webhook:
        raise Forbidden(f"a key with role {principal.role.value} cannot manage budgets")
    if tenant_id is None:
        if principal.tenant_id is not None:
            raise Forbidden("this key is bound to a tenant")
        return
    principal.require_tenant(tenant_id)


def manages(principal: Principal, tenant_id: str | None) -> bool:
    """Whether `principal` may manage what belongs to `tenant_id`."""
    try:
        require_manage(principal, tenant_id)
    except Forbidden:
        return False
    return True


class EndpointService:
    """Writes and reads of webhook endpoints."""

    async def create_endpoint(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        url: str,
        tenant_id: str | None,
        event_types: Sequence[str] | None,
        allow_private: bool,
    ) -> WebhookEndpoint:
        """Register a receiver; its secret is returned here only."""
        if tenant_id is not None:
            tenant_id = check_id("input.tenantId", tenant_id)
        elif principal.tenant_id is not None:
            tenant_id = principal.tenant_id  # a bound key's endpoint is its tenant's
        require_manage(principal, tenant_id)
        types = (
            list(event_types) if event_types is not None else [EVENT_THRESHOLD_CROSSED]
        )
        if not types:
            raise BadUserInput("input.eventTypes", "must name at least one event type")
        for name in types:
            if name not in EVENT_TYPES:
                raise BadUserInput("input.eventTypes", f"unknown event type {name!r}")
        url = url.strip()
        await urls.check("input.url", url, allow_private=allow_private)
        if tenant_id is not None and not await existing_tenants(session, [tenant_id]):
            raise BadUserInput("input.tenantId", f"unknown tenant {tenant_id!r}")
        endpoint = WebhookEndpoint(
            url=url,
            tenant_id=tenant_id,
            event_types=sorted(set(types)),
            secret=new_secret(),
            created_at=utcnow(),
        )
        session.add(endpoint)
        await session.flush()
        return endpoint

    async def delete_endpoint(
        self, session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
    ) -> bool:
        """Delete an endpoint and its deliveries; False when there is none to see."""
        repo = WebhookRepository(session)
        endpoint = await repo.endpoint(endpoint_id)
        if endpoint is None or not manages(principal, endpoint.tenant_id):
            require_manage(principal, principal.tenant_id)
            return False
        return await repo.delete_endpoint(endpoint_id)

    async def endpoint(
        self, session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
    ) -> WebhookEndpoint | None:
        """An endpoint the caller manages, or None (its secret is not for display)."""
        principal.require_read()
        endpoint = await WebhookRepository(session).endpoint(endpoint_id)
        if endpoint is None or not manages(principal, endpoint.tenant_id):
            return None
        return endpoint


endpoint_service = EndpointService()
