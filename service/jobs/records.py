"""Plain values for jobs: kinds, states, and what a finished task reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from service.usage.records import UsageIn


class JobKind(StrEnum):
    """What a job does; named after the mutation that asks for it."""

    CREATE_INTERACTION = "createInteraction"
    TRANSCRIPT = "requestTranscript"
    DOCUMENT = "requestDocument"
    STREAM = "requestStream"


class JobState(StrEnum):
    """The `jobs.status` column."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Registration:
    """An interaction to map to a tenant and user when the job succeeds."""

    interaction_id: str
    tenant_id: str
    user_id: str


@dataclass(frozen=True)
class Finish:
    """What a task reports; written in the transaction that ends the job.

    `usage` is every credit figure Corti reported (normally one; a recovery
    may find more than one entity that lost attempts created). `failure` ends
    the job FAILED although its usage is recorded (e.g. a transcript that
    Corti billed but could not complete).
    """

    usage: list[UsageIn] = field(default_factory=list)
    register: Registration | None = None
    failure: str | None = None


class JobFailed(Exception):
    """A task gives up for good; the message becomes the job's error."""
