"""SQL of outgoing webhooks. Only flushes; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.webhooks.models import WebhookDelivery, WebhookEndpoint


class WebhookRepository:
    """Endpoints and deliveries."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def endpoints_for(
        self, tenant_id: str, event_type: str
    ) -> list[WebhookEndpoint]:
        """Enabled endpoints of `tenant_id` or of every tenant for `event_type`."""
        rows = await self.session.execute(
            select(WebhookEndpoint)
            .where(
                or_(
                    WebhookEndpoint.tenant_id == tenant_id,
                    WebhookEndpoint.tenant_id.is_(None),
                ),
                WebhookEndpoint.disabled_at.is_(None),
            )
            .order_by(WebhookEndpoint.id)
        )
        return [e for e in rows.scalars() if event_type in e.event_types]

    async def endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        """One endpoint by id."""
        return await self.session.get(
            WebhookEndpoint, endpoint_id, populate_existing=True
        )

    async def endpoints(self, tenant_id: str | None) -> list[WebhookEndpoint]:
        """Endpoints of one tenant (None: all), oldest first."""
        statement = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
        if tenant_id is not None:
            statement = statement.where(WebhookEndpoint.tenant_id == tenant_id)
        return list((await self.session.execute(statement)).scalars())

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> bool:
        """Delete an endpoint and its deliveries; True if it existed."""
        await self.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        result = await self.session.execute(
            delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def deliveries(
        self, endpoint_ids: Sequence[uuid.UUID], first: int
    ) -> dict[uuid.UUID, list[WebhookDelivery]]:
        """The newest `first` deliveries of each endpoint."""
        result: dict[uuid.UUID, list[WebhookDelivery]] = {e: [] for e in endpoint_ids}
        if not endpoint_ids or first <= 0:
            return result
        ranked = (
            select(
                WebhookDelivery,
                func.row_number()
                .over(
                    partition_by=WebhookDelivery.endpoint_id,
                    order_by=(
                        WebhookDelivery.created_at.desc(),
                        WebhookDelivery.id.desc(),
                    ),
                )
                .label("n"),
            )
            .where(WebhookDelivery.endpoint_id.in_(list(endpoint_ids)))
            .subquery()
        )

        delivery = aliased(WebhookDelivery, ranked)
        rows = await self.session.execute(
            select(delivery)
            .where(ranked.c.n <= first)
            .order_by(ranked.c.endpoint_id, ranked.c.n)
        )
        for row in rows.scalars():
            result[row.endpoint_id].append(row)
        return result
