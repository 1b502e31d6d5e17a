"""Operations and helpers of the job and worker tests (fixtures: conftest.py).

Plain functions, imported by the test modules (and tests/ops), so that no test
module imports from a conftest.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from corti_sandbox.testing import SandboxControl
from service.config import Settings
from service.db.models import Job, JobAudioChunk, UsageRecord
from service.db.session import Database
from tests.fixtures.app import GraphQLClient

CREATE = """
mutation($in: CreateInteractionInput!) {
  createInteraction(input: $in) { id kind status attempts }
}"""
TRANSCRIPT = """
mutation($in: RequestTranscriptInput!) {
  requestTranscript(input: $in) { id kind status attempts }
}"""
DOCUMENT = """
mutation($in: RequestDocumentInput!) {
  requestDocument(input: $in) { id kind status attempts }
}"""
STREAM = """
mutation($in: RequestStreamInput!) {
  requestStream(input: $in) { id kind status attempts }
}"""
FACTS = """
mutation($in: RequestFactsInput!) {
  requestFacts(input: $in) { id kind status attempts provisionalCredits }
}"""
CODING = """
mutation($in: RequestCodingInput!) {
  requestCoding(input: $in) { id kind status attempts }
}"""
DICTATION = """
mutation($in: RequestDictationInput!) {
  requestDictation(input: $in) { id kind status attempts }
}"""
JOB = """
query($id: ID!) {
  job(id: $id) {
    id kind status attempts error createdAt updatedAt
    interaction { id tenant { id } user { id } }
    usage { id source externalId credits interactionId }
  }
}"""


def worker_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a fast test worker."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "job_lease_seconds": 2,
        "job_max_attempts": 5,
        "job_retry_base_seconds": 0.05,
        "job_retry_max_seconds": 0.2,
        "worker_poll_seconds": 0.05,
        "worker_shutdown_seconds": 2.0,
        **overrides,
    }
    return Settings(**values)


RunWorker = Callable[..., Any]

# --- GraphQL helpers -----------------------------------------------------------


async def upload(
    gql: GraphQLClient,
    query: str,
    fields: dict[str, Any],
    data: bytes | None,
    *,
    key: str | None = None,
) -> dict[str, Any]:
    """Post a mutation with `input.audio` as a multipart file upload."""
    variables = {"in": {**fields, "audio": None}}
    form = {
        "operations": json.dumps({"query": query, "variables": variables}),
        "map": json.dumps({"0": ["variables.in.audio"]} if data is not None else {}),
    }
    files = (
        {"0": ("audio.raw", data, "application/octet-stream")}
        if data is not None
        else None
    )
    token = key or gql.key
    response = await gql.http.post(
        "/graphql",
        data=form,
        files=files,
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    return body


def job_of(body: dict[str, Any]) -> dict[str, Any]:
    """The job a successful job mutation returned."""
    assert "errors" not in body, body.get("errors")
    (job,) = body["data"].values()
    assert job["status"] == "QUEUED"
    result: dict[str, Any] = job
    return result


async def wait_for_job(
    gql: GraphQLClient, job_id: str, *, within: float = 20.0
) -> dict[str, Any]:
    """Poll Query.job until it SUCCEEDED or FAILED."""
    deadline = time.monotonic() + within
    while True:
        data = await gql.data(JOB, {"id": job_id})
        job: dict[str, Any] = data["job"]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {job['status']} after {within}s: {job}")
        await asyncio.sleep(0.05)


async def request_document(
    gql: GraphQLClient, interaction_id: str, *context: str
) -> str:
    """Queue a document job (context "Cough." unless given); returns the job id."""
    body = await gql(
        DOCUMENT,
        {
            "in": {
                "interactionId": interaction_id,
                "templateKey": "soap",
                "context": list(context or ("Cough.",)),
            }
        },
    )
    job_id: str = job_of(body)["id"]
    return job_id


async def new_interaction(
    gql: GraphQLClient, tenant: str = "t1", user: str = "u1"
) -> str:
    """A Corti interaction created through createInteraction (worker running)."""
    body = await gql(
        CREATE,
        {"in": {"tenantId": tenant, "userId": user, "encounterIdentifier": "visit-1"}},
    )
    job = await wait_for_job(gql, job_of(body)["id"])
    assert job["status"] == "SUCCEEDED", job
    interaction_id: str = job["interaction"]["id"]
    return interaction_id


# --- ledger checks -------------------------------------------------------------


async def ledger(db: Database) -> list[UsageRecord]:
    """Every usage record in our database."""
    async with db.read() as session:
        return list((await session.execute(select(UsageRecord))).scalars())


async def assert_billed_once(control: SandboxControl, db: Database) -> None:
    """Everything the sandbox billed is in our ledger once; nothing twice.

    Transcripts, documents and dictations are matched by Corti id; streams
    (which our ledger keys by job id) by interaction, count and credits; facts
    and coding calls (keyed by our request id: Corti's answer has none) by
    count and credits.
    """
    billed = await control.billed()
    ids = Counter(b["id"] for b in billed)
    assert all(n == 1 for n in ids.values()), f"billed twice: {billed}"
    records = await ledger(db)
    ours = {(r.source, r.external_id): r for r in records}
    assert len(ours) == len(records)
    streams_billed: Counter[tuple[str, Decimal]] = Counter()
    unkeyed_billed: Counter[tuple[str, Decimal]] = Counter()
    for entry in billed:
        if entry["kind"] == "stream":
            streams_billed[(entry["interaction_id"], Decimal(entry["credits"]))] += 1
            continue
        if entry["kind"] in ("facts", "coding"):
            unkeyed_billed[(entry["kind"].upper(), Decimal(entry["credits"]))] += 1
            continue
        record = ours.get((entry["kind"].upper(), entry["id"]))
        assert record is not None, f"billed but not recorded: {entry}"
        assert record.credits == Decimal(entry["credits"])
        assert record.interaction_id == entry["interaction_id"]
    streams_ours = Counter(
        (r.interaction_id, r.credits) for r in records if r.source == "STREAM"
    )
    assert streams_ours == streams_billed
    unkeyed_ours = Counter(
        (r.source, r.credits) for r in records if r.source in ("FACTS", "CODING")
    )
    assert unkeyed_ours == unkeyed_billed
    keyed = [r for r in records if r.source not in ("STREAM", "FACTS", "CODING")]
    assert len(keyed) == sum(
        1 for b in billed if b["kind"] not in ("stream", "facts", "coding")
    )


async def job_count(db: Database) -> int:
    """How many jobs are stored."""
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


async def audio_rows(db: Database) -> int:
    """How many audio chunk rows are stored."""
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(JobAudioChunk))
        return int(count or 0)
