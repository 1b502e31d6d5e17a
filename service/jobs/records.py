"""Plain values for jobs: the Corti kinds and the job states."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    """What a job does; named after the mutation that asks for it."""

    CREATE_INTERACTION = "createInteraction"
    TRANSCRIPT = "requestTranscript"
    DOCUMENT = "requestDocument"
    STREAM = "requestStream"
    FACTS = "requestFacts"
    CODING = "requestCoding"
    DICTATION = "requestDictation"


class JobState(StrEnum):
    """The `jobs.status` column."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
