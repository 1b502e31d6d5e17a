"""Tables of the auth domain: signed webhook requests already seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base
from service.db.types import UTCDateTime


class SeenWebhookSignature(Base):
    """A signed webhook request accepted once; replays of it are refused.

    Keyed by SHA-256 of the signed content (`<t>.<raw body>`), so the cache is
    shared by every API process on the database; rows expire with the
    signature's tolerance window and are pruned by the API.
    """

    __tablename__ = "webhook_signatures_seen"
    __table_args__ = (Index("ix_webhook_signatures_seen_expires", "expires_at"),)

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
