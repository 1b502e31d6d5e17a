"""Tables of outgoing webhooks.

A delivery is one event for one endpoint; its id is the `webhook-id` header of
every attempt, and the body is stored so every attempt signs the same bytes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, new_uuid, utcnow
from service.db.models import ID_LENGTH
from service.db.types import UTCDateTime


class WebhookEndpoint(Base):
    """A URL that receives signed events of one tenant (or of every tenant)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant", "tenant_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    url: Mapped[str] = mapped_column(Text)
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    # Needed in clear to sign; shown to the caller once, when created.
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when a receiver answers 410 Gone; a disabled endpoint gets nothing.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one endpoint, sent by `webhook.deliver` jobs until it lands."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
