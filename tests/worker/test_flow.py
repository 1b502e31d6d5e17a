"""The whole flow over HTTP: createInteraction -> transcript -> document -> stream."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from corti_sandbox.testing import SandboxControl
from service.corti import CortiClient
from service.db.models import Job, UsageRecord
from service.db.session import Database
from service.events import UsageRecorded, after_commit, remove_handler
from tests.fixtures.app import GraphQLClient
from tests.fixtures.corti import MakeCorti, audio
from tests.worker.helpers import (
    JOB,
    STREAM,
    TRANSCRIPT,
    RunWorker,
    assert_billed_once,
    audio_rows,
    job_of,
    new_interaction,
    request_document,
    upload,
    wait_for_job,
)

pytestmark = pytest.mark.asyncio


async def _unfinished(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status.in_(("QUEUED", "RUNNING")))
        )
    return int(count or 0)


CREDITS = """
query($id: ID!) {
  interaction(id: $id) {
    tenant { id } user { id }
    credits { total stream transcript document records }
  }
}"""


class TestFlow:
    async def test_each_job_succeeds_and_is_recorded_once(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql, "t1", "u1")

            transcript = job_of(
                await upload(
                    gql, TRANSCRIPT, {"interactionId": interaction_id}, audio(2)
                )
            )
            done = await wait_for_job(gql, transcript["id"])
            assert done["status"] == "SUCCEEDED", done
            assert done["kind"] == "requestTranscript"
            assert done["attempts"] == 1
            assert done["error"] is None
            assert done["usage"]["source"] == "TRANSCRIPT"
            assert Decimal(done["usage"]["credits"]) == Decimal("0.02")
            assert done["interaction"]["tenant"]["id"] == "t1"

            document = await wait_for_job(
                gql,
                await request_document(
                    gql, interaction_id, "Patient reports a cough.", "No fever."
                ),
            )
            assert document["status"] == "SUCCEEDED", document
            assert document["usage"]["source"] == "DOCUMENT"
            assert Decimal(document["usage"]["credits"]) == Decimal("0.11")

            stream_job = job_of(
                await upload(gql, STREAM, {"interactionId": interaction_id}, audio(1.5))
            )
            stream = await wait_for_job(gql, stream_job["id"])
            assert stream["status"] == "SUCCEEDED", stream
            assert stream["usage"]["externalId"] == stream_job["id"]
            assert Decimal(stream["usage"]["credits"]) == Decimal("0.04")

        billed = await control.billed(interaction_id)
        assert sorted(b["kind"] for b in billed) == ["document", "stream", "transcript"]
        await assert_billed_once(control, db)
        data = await gql.data(CREDITS, {"id": interaction_id})
        credits = data["interaction"]["credits"]
        assert credits == {
            "total": "0.17",
            "stream": "0.04",
            "transcript": "0.02",
            "document": "0.11",
            "records": 3,
        }
        assert await audio_rows(db) == 0  # audio is deleted when its job ends

    async def test_transcript_of_an_existing_recording(
        self,
        gql: GraphQLClient,
        db: Database,
        corti: CortiClient,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            # The caller transcribed this recording before, outside our jobs.
            recording = await corti.upload_recording(interaction_id, audio(3))
            earlier = await corti.create_transcript(
                interaction_id, recording.recording_id
            )
            body = await gql(
                TRANSCRIPT,
                {
                    "in": {
                        "interactionId": interaction_id,
                        "recordingId": recording.recording_id,
                        "primaryLanguage": "da",
                    }
                },
            )
            job = await wait_for_job(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        assert job["usage"]["externalId"] != earlier.id
        assert Decimal(job["usage"]["credits"]) == Decimal("0.03")
        assert len(await control.billed(interaction_id)) == 2

    async def test_long_audio_is_polled_until_completed(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        await control.configure(
            processing_threshold_bytes=32_000, processing_seconds=0.3
        )
        async with run_worker():
            interaction_id = await new_interaction(gql)
            body = await upload(
                gql, TRANSCRIPT, {"interactionId": interaction_id}, audio(4)
            )
            job = await wait_for_job(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        assert Decimal(job["usage"]["credits"]) == Decimal("0.04")
        await assert_billed_once(control, db)

    async def test_a_refused_stream_config_fails_with_the_reason(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            body = await upload(
                gql,
                STREAM,
                {"interactionId": interaction_id, "primaryLanguage": "xx"},
                audio(1),
            )
            job = await wait_for_job(gql, job_of(body)["id"])
        assert job["status"] == "FAILED"
        assert "CONFIG_DENIED" in job["error"]
        assert "language unavailable" in job["error"]
        assert job["attempts"] == 1
        assert job["usage"] is None
        assert await control.billed() == []
        assert await audio_rows(db) == 0

    async def test_other_4xx_fails_at_once_with_cortis_detail(
        self,
        gql: GraphQLClient,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            body = await gql(
                TRANSCRIPT,
                {
                    "in": {
                        "interactionId": interaction_id,
                        "recordingId": "00000000-0000-4000-8000-000000000000",
                    }
                },
            )
            job = await wait_for_job(gql, job_of(body)["id"])
        assert job["status"] == "FAILED"
        assert job["attempts"] == 1
        assert "404" in job["error"]
        assert "not found" in job["error"].lower()


class TestSharing:
    async def test_new_usage_is_published_after_commit(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        published: list[tuple[str, bool]] = []

        @after_commit(UsageRecorded)
        async def publish(event: UsageRecorded, database: Database) -> None:
            for record in event.records:
                async with database.read() as session:
                    stored = await session.get(UsageRecord, record.id)
                published.append((record.external_id, stored is not None))

        try:
            async with run_worker():
                interaction_id = await new_interaction(gql)
                job = await wait_for_job(
                    gql, await request_document(gql, interaction_id)
                )
        finally:
            remove_handler(publish)
        assert published == [(job["usage"]["externalId"], True)]

    async def test_two_workers_share_one_queue(
        self,
        gql: GraphQLClient,
        db: Database,
        database_url: str,
        control: SandboxControl,
        make_corti: MakeCorti,
        run_worker: RunWorker,
    ) -> None:
        other_db = Database.from_url(database_url)
        try:
            async with (
                make_corti() as other_corti,
                run_worker(concurrency=3) as first,
                run_worker(other_corti, database=other_db, concurrency=3) as second,
            ):
                interaction_id = await new_interaction(gql)
                await control.arm(
                    {
                        "kind": "delay",
                        "seconds": 0.1,
                        "path": "/documents/",
                        "count": 99,
                    }
                )
                job_ids = [
                    await request_document(gql, interaction_id, f"Note {n}.")
                    for n in range(12)
                ]
                jobs = await asyncio.gather(
                    *(wait_for_job(gql, job_id) for job_id in job_ids)
                )
                assert first.finished > 0
                assert second.finished > 0
        finally:
            await other_db.dispose()
        assert all(j["status"] == "SUCCEEDED" and j["attempts"] == 1 for j in jobs)
        assert len(await control.billed()) == 12
        await assert_billed_once(control, db)


class TestConcurrency:
    async def test_one_worker_keeps_32_corti_calls_in_flight(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
        await control.arm(
            {"kind": "delay", "seconds": 0.5, "path": "/documents/", "count": 40}
        )
        job_ids = [
            await request_document(gql, interaction_id, f"Note {n}.") for n in range(40)
        ]
        async with run_worker() as worker:
            assert worker.concurrency == 32  # the default WORKER_CONCURRENCY
            peak = 0
            while await _unfinished(db):
                peak = max(peak, worker.running)
                await asyncio.sleep(0.01)
        jobs = [(await gql.data(JOB, {"id": job_id}))["job"] for job_id in job_ids]
        # 32 calls in flight at once is the property; a wall-clock bound
        # would also measure how busy the machine is.
        assert peak == 32
        assert all(job["status"] == "SUCCEEDED" for job in jobs)
        await assert_billed_once(control, db)
