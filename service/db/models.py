"""All tables.

A usage record names its Corti `interaction_id`; the interaction row maps it to
a tenant and user. For fast aggregates the record also carries a copy of that
tenant and user (NULL while the interaction is unregistered). The copy is
written only by `UsageService`, under a per-interaction lock, in the same
transaction as the record or the (re-)registration, so it never drifts
(tests/usage/test_totals_property.py checks this). The rollup tables
(usage_tenant_hours, usage_user_days, usage_user_hours,
usage_interaction_days) and the
interaction's first and last usage times are kept the same way, by
service.usage.rollups and the repository.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, new_uuid, utcnow
from service.db.types import Credits, CreditTotal, UTCDateTime

ID_LENGTH = 128


class Tenant(Base):
    """A customer's tenant, known from the first interaction registered for it."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A customer's user; ids are unique within their tenant."""

    __tablename__ = "users"

    tenant_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("tenants.id"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Interaction(Base):
    """A Corti interaction mapped to the customer's tenant and user."""

    __tablename__ = "interactions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name="fk_interactions_user_users",
        ),
        Index("ix_interactions_tenant_created", "tenant_id", "created_at"),
        # Pages of interactions(range:), newest usage first, read from these
        # alone (service.usage.queries.interactions); also the (tenant, user)
        # index.
        Index(
            "ix_interactions_tenant_user_last_usage",
            "tenant_id",
            "user_id",
            "last_usage_at",
            "id",
            postgresql_include=["first_usage_at", "created_at"],
        ),
        Index(
            "ix_interactions_tenant_last_usage",
            "tenant_id",
            "last_usage_at",
            "id",
            postgresql_include=["first_usage_at", "user_id", "created_at"],
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Newest and oldest usage record's created_at (NULL: none yet): they order
    # interaction lists and tell which interactions a range covers whole.
    last_usage_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_usage_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsageRecord(Base):
    """One credit figure reported by Corti; identified by (source, external_id)."""

    __tablename__ = "usage_records"
    __table_args__ = (
        UniqueConstraint(
            "source", "external_id", name="uq_usage_records_source_external"
        ),
        Index("ix_usage_records_interaction_created", "interaction_id", "created_at"),
        Index("ix_usage_records_created", "created_at"),
        # Tenant- and user-level sums and buckets read only these indexes on
        # PostgreSQL (index-only scans thanks to INCLUDE).
        Index(
            "ix_usage_records_tenant_created",
            "tenant_id",
            "created_at",
            postgresql_include=["source", "credits", "user_id", "interaction_id"],
        ),
        Index(
            "ix_usage_records_tenant_user_created",
            "tenant_id",
            "user_id",
            "created_at",
            postgresql_include=["source", "credits", "interaction_id"],
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    # NULL for usage attributed to a tenant and user directly (no interaction).
    interaction_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    credits: Mapped[Decimal] = mapped_column(Credits)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The owner: a copy of the interaction's (NULL until it is registered), or
    # the tenant and user the record was attributed to directly.
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # The tenant of the tenant-bound key that wrote it (NULL: admin or webhook).
    # Registration checks it so one tenant cannot claim another's usage.
    writer_tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class TenantHourUsage(Base):
    """Rollup: a tenant's usage per UTC hour and source (service.usage.rollups)."""

    __tablename__ = "usage_tenant_hours"

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    credits: Mapped[Decimal] = mapped_column(CreditTotal)
    records: Mapped[int] = mapped_column(BigInteger)


class UserDayUsage(Base):
    """Rollup: a user's usage per UTC day and source (service.usage.rollups)."""

    __tablename__ = "usage_user_days"
    __table_args__ = (
        Index(
            "ix_usage_user_days_user_day",
            "tenant_id",
            "user_id",
            "day",
            postgresql_include=["source", "credits", "records"],
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    day: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    credits: Mapped[Decimal] = mapped_column(CreditTotal)
    records: Mapped[int] = mapped_column(BigInteger)


class UserHourUsage(Base):
    """Rollup: a user's usage per UTC hour and source (service.usage.rollups).

    Readers take whole UTC days from usage_user_days and the whole hours of
    a range's ends (and of buckets in zones whose days start at an hour
    other than UTC midnight) from here.
    """

    __tablename__ = "usage_user_hours"
    __table_args__ = (
        Index(
            "ix_usage_user_hours_user_hour",
            "tenant_id",
            "user_id",
            "hour",
            postgresql_include=["source", "credits", "records"],
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    credits: Mapped[Decimal] = mapped_column(CreditTotal)
    records: Mapped[int] = mapped_column(BigInteger)


class UserWeekUsage(Base):
    """Rollup: a user's usage per ISO week (from Monday 00:00 UTC) and source
    (service.usage.rollups).

    Users' totals and rankings over a range take its whole weeks from here,
    the whole days beside them from usage_user_days, then hours, then records:
    a 90-day range reads about 20 rows per user and source instead of 90.
    """

    __tablename__ = "usage_user_weeks"
    __table_args__ = (
        Index(
            "ix_usage_user_weeks_user_week",
            "tenant_id",
            "user_id",
            "week",
            postgresql_include=["source", "credits", "records"],
        ),
    )

    tenant_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    week: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    credits: Mapped[Decimal] = mapped_column(CreditTotal)
    records: Mapped[int] = mapped_column(BigInteger)


class InteractionDayUsage(Base):
    """Rollup: an interaction's usage per UTC day and source (service.usage.rollups).

    Keyed by the interaction, not its owner, it counts every record that
    names the interaction, registered or not: re-registration moves nothing.
    """

    __tablename__ = "usage_interaction_days"

    interaction_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    day: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    credits: Mapped[Decimal] = mapped_column(CreditTotal)
    records: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    """An API key; only a SHA-256 hash of its secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Job(Base):
    """A Corti call queued by a mutation and run by the background worker."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_run_after", "status", "run_after"),
        Index("ix_jobs_status_lease_expires", "status", "lease_expires_at"),
        Index("ix_jobs_interaction", "interaction_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="QUEUED")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    interaction_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    usage_record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Size of the audio uploaded with the job (kept in job_audio_chunks).
    audio_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # W3C trace context ({"traceparent": ...}) of the request that enqueued it,
    # continued by the worker's span (only with tracing on).
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON)


class JobAudioChunk(Base):
    """About 1 MiB of a job's uploaded audio; deleted when the job ends."""

    __tablename__ = "job_audio_chunks"

    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobSchedule(Base):
    """The last due time enqueued per scheduled job (service/jobs/schedule.py)."""

    __tablename__ = "job_schedules"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
