"""Finishing a Corti job: register the interaction and record its usage.

A Corti kind (service/jobs/tasks.py) returns a `Finish`; the worker writes it
in the unit of work that ends the job, so the credits Corti reported become a
usage record exactly when the job becomes SUCCEEDED (or FAILED with usage
that was billed anyway), and never twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.auth.principal import Principal, Role
from service.jobs.registry import Ending, JobContext
from service.uow import UnitOfWork
from service.usage.records import RecordRow, UsageIn
from service.usage.service import usage_service


@dataclass(frozen=True)
class Registration:
    """An interaction to map to a tenant and user when the job succeeds."""

    interaction_id: str
    tenant_id: str
    user_id: str


@dataclass(frozen=True)
class Finish:
    """What a Corti task reports; written in the transaction that ends the job.

    `usage` is every credit figure Corti reported (normally one; a recovery
    may find more than one entity that lost attempts created). `failure` ends
    the job FAILED although its usage is recorded (e.g. a transcript that
    Corti billed but could not complete).
    """

    usage: list[UsageIn] = field(default_factory=list)
    register: Registration | None = None
    failure: str | None = None

    async def write(self, uow: UnitOfWork, ctx: JobContext) -> Ending:
        """Register and record as the job's creator may (an ingest key of its tenant)."""
        principal = Principal(role=Role.INGEST, tenant_id=ctx.job.tenant_id)
        if self.register is not None:
            await usage_service.register_interaction(
                uow,
                principal,
                interaction_id=self.register.interaction_id,
                tenant_id=self.register.tenant_id,
                user_id=self.register.user_id,
            )
        first: RecordRow | None = None
        for usage in self.usage:
            outcome = await usage_service.record(uow, principal, usage)
            first = first or outcome.record
        return Ending(
            failure=self.failure,
            usage_record_id=first.id if first is not None else None,
            interaction_id=self.register.interaction_id if self.register else None,
        )
