"""Fault switches of the sandbox: every billed entity ends up recorded once.

Each test ends with `assert_billed_once`: whatever the sandbox billed is in our
ledger exactly once, and no retry made it bill anything twice.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from corti_sandbox.testing import SandboxControl
from service.auth.principal import Principal
from service.db.session import Database
from service.usage.records import RecordOutcome, UsageIn
from service.usage.service import usage_service
from service.worker import runner
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


async def _transcript(gql: GraphQLClient, interaction_id: str, seconds: float) -> str:
    body = await upload(
        gql, TRANSCRIPT, {"interactionId": interaction_id}, audio(seconds)
    )
    job_id: str = job_of(body)["id"]
    return job_id


class TestUnavailable:
    async def test_503_then_success(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            await control.arm(
                {"kind": "error", "status": 503, "method": "POST", "path": "/recordings/"},
                {"kind": "error", "status": 503, "method": "POST", "path": "/transcripts/"},
                {"kind": "error", "status": 503, "method": "POST", "path": "/documents/"},
            )  # fmt: skip
            transcript = await wait_for_job(
                gql, await _transcript(gql, interaction_id, 1)
            )
            document = await wait_for_job(
                gql, await request_document(gql, interaction_id)
            )
        for job in (transcript, document):
            assert job["status"] == "SUCCEEDED", job
            assert job["error"] is None
            assert job["attempts"] >= 2
        assert await control.faults() == [] or all(
            f["remaining"] == 0 for f in await control.faults()
        )
        assert len(await control.billed()) == 2
        await assert_billed_once(control, db)

    async def test_a_job_gives_up_after_max_attempts(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker(job_max_attempts=3):
            interaction_id = await new_interaction(gql)
            await control.arm(
                {"kind": "error", "status": 502, "path": "/documents/", "count": 50}
            )
            job = await wait_for_job(gql, await request_document(gql, interaction_id))
        assert job["status"] == "FAILED"
        assert job["attempts"] == 3
        assert job["error"].startswith("gave up after 3 attempts")
        assert "502" in job["error"]
        assert await control.billed() == []
        await assert_billed_once(control, db)


class TestInsufficientBalance:
    async def test_429_fails_with_the_reason(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            await control.arm(
                {"kind": "insufficient_balance", "path": "/documents/", "count": 20},
                {"kind": "insufficient_balance", "path": "/transcripts/", "count": 20},
            )
            document = await wait_for_job(
                gql, await request_document(gql, interaction_id)
            )
            transcript = await wait_for_job(
                gql, await _transcript(gql, interaction_id, 1)
            )
        for job in (document, transcript):
            assert job["status"] == "FAILED", job
            assert "insufficient balance" in job["error"].lower()
            assert job["attempts"] == 1
            assert job["usage"] is None
        assert await control.billed() == []
        await assert_billed_once(control, db)
        assert await audio_rows(db) == 0


class TestAmbiguousAnswers:
    async def test_timeout_after_billing_is_found_and_recorded(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        make_corti: MakeCorti,
        run_worker: RunWorker,
    ) -> None:
        async with make_corti(timeout=0.5) as corti, run_worker(corti):
            interaction_id = await new_interaction(gql)
            # The sandbox does the work (and bills) first, then answers late.
            await control.arm(
                {"kind": "delay", "seconds": 1.2, "method": "POST", "path": "/transcripts/"},
                {"kind": "delay", "seconds": 1.2, "method": "POST", "path": "/documents/"},
            )  # fmt: skip
            jobs = await asyncio.gather(
                wait_for_job(gql, await _transcript(gql, interaction_id, 2)),
                wait_for_job(gql, await request_document(gql, interaction_id)),
            )
        for job in jobs:
            assert job["status"] == "SUCCEEDED", job
            assert job["attempts"] == 2
        billed = await control.billed()
        assert {b["id"] for b in billed} == {j["usage"]["externalId"] for j in jobs}
        await assert_billed_once(control, db)

    @pytest.mark.parametrize("mode", ["drop", "500"])
    async def test_answer_lost_after_billing(
        self,
        mode: str,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            await control.arm(
                {"kind": "lose_answer", "mode": mode, "path": "/transcripts/"},
                {"kind": "lose_answer", "mode": mode, "path": "/documents/"},
            )
            jobs = await asyncio.gather(
                wait_for_job(gql, await _transcript(gql, interaction_id, 1)),
                wait_for_job(gql, await request_document(gql, interaction_id)),
            )
        for job in jobs:
            assert job["status"] == "SUCCEEDED", job
            assert job["attempts"] == 2
        assert len(await control.billed()) == 2
        await assert_billed_once(control, db)

    async def test_a_callers_own_earlier_transcript_is_not_taken(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        make_corti: MakeCorti,
        run_worker: RunWorker,
    ) -> None:
        async with make_corti() as corti, run_worker():
            interaction_id = await new_interaction(gql)
            recording = await corti.upload_recording(interaction_id, audio(1))
            earlier = await corti.create_transcript(
                interaction_id, recording.recording_id
            )
            await control.arm({"kind": "lose_answer", "path": "/transcripts/"})
            body = await gql(
                TRANSCRIPT,
                {
                    "in": {
                        "interactionId": interaction_id,
                        "recordingId": recording.recording_id,
                    }
                },
            )
            job = await wait_for_job(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        assert job["usage"]["externalId"] != earlier.id
        billed = await control.billed()
        assert len(billed) == 2
        assert job["usage"]["externalId"] in {b["id"] for b in billed}


class TestStreamsAndTokens:
    async def test_websocket_dropped_mid_stream(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            await control.arm(
                {"kind": "drop_stream", "after_bytes": 40_000, "close_code": 1011}
            )
            body = await upload(
                gql, STREAM, {"interactionId": interaction_id}, audio(2)
            )
            job = await wait_for_job(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        assert job["attempts"] == 2
        assert Decimal(job["usage"]["credits"]) == Decimal("0.04")
        stats = await control.stats()
        assert stats["streams_opened"] == 2
        assert len(await control.billed()) == 1
        await assert_billed_once(control, db)

    async def test_a_database_failure_at_the_end_does_not_stream_twice(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        record = usage_service.record
        failures = [OperationalError("COMMIT", {}, Exception("disk I/O error"))] * 2

        async def flaky(session: Any, principal: Principal, usage: UsageIn) -> Any:
            if failures and usage.source.value == "STREAM":
                raise failures.pop()
            outcome: RecordOutcome = await record(session, principal, usage)
            return outcome

        monkeypatch.setattr(runner, "COMMIT_RETRY_DELAYS", (0.01, 0.01, 0.01))
        monkeypatch.setattr(usage_service, "record", flaky)
        async with run_worker():
            interaction_id = await new_interaction(gql)
            body = await upload(
                gql, STREAM, {"interactionId": interaction_id}, audio(1)
            )
            job = await wait_for_job(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        assert job["attempts"] == 1
        assert failures == []
        assert (await control.stats())["streams_opened"] == 1
        await assert_billed_once(control, db)

    async def test_token_revoked_mid_run(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
            issued = (await control.stats())["tokens_issued"]
            # Hold the upload (and a document) at the door while the tokens go.
            await control.arm(
                {"kind": "delay", "before": True, "seconds": 0.5, "method": "POST", "path": "/recordings/"},
                {"kind": "delay", "before": True, "seconds": 0.5, "method": "POST", "path": "/documents/"},
            )  # fmt: skip
            transcript_id = await _transcript(gql, interaction_id, 1)
            document_id = await request_document(gql, interaction_id)
            await _until_running(gql, transcript_id, document_id)
            await control.revoke_tokens()
            jobs = [
                await wait_for_job(gql, transcript_id),
                await wait_for_job(gql, document_id),
            ]
        for job in jobs:
            assert job["status"] == "SUCCEEDED", job
            assert job["attempts"] == 1
        stats = await control.stats()
        assert stats["tokens_issued"] > issued
        assert 401 in {r["status"] for r in stats["requests"]}
        await assert_billed_once(control, db)


async def _until_running(gql: GraphQLClient, *job_ids: str) -> None:
    for _ in range(200):
        statuses: list[Any] = [
            (await gql.data(JOB, {"id": job_id}))["job"]["status"] for job_id in job_ids
        ]
        if all(status == "RUNNING" for status in statuses):
            await asyncio.sleep(0.1)  # let the held requests reach the sandbox
            return
        await asyncio.sleep(0.02)
    raise AssertionError("jobs never started")
