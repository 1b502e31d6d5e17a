"""A worker process killed mid-call, and one stopped with SIGTERM.

The killed worker is a real `python -m service worker` subprocess configured
through the environment, with a one-second lease.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from corti_sandbox.testing import SandboxControl, SandboxServer
from service.db.models import Job
from service.db.session import Database
from service.jobs import queue
from tests.fixtures.app import GraphQLClient
from tests.fixtures.corti import audio
from tests.worker.helpers import (
    DICTATION,
    FACTS,
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


async def _until(check: Callable[[], Awaitable[bool]], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _job_row(db: Database, job_id: str) -> Job:
    async with db.read() as session:
        row = await session.scalar(select(Job).where(Job.id == uuid.UUID(job_id)))
    assert row is not None
    return row


async def _start_worker(
    sandbox: SandboxServer, database_url: str
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        **sandbox.environment(),
        "DATABASE_URL": database_url,
        "JOB_LEASE_SECONDS": "1",
        "JOB_RETRY_BASE_SECONDS": "0.05",
        "WORKER_POLL_SECONDS": "0.05",
        "WORKER_SHUTDOWN_SECONDS": "5",
        "CORTI_TIMEOUT_SECONDS": "20",
        "LOG_LEVEL": "WARNING",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise


class TestWorkerProcess:
    async def test_sigkill_during_a_call_then_restart(
        self,
        gql: GraphQLClient,
        db: Database,
        database_url: str,
        sandbox: SandboxServer,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
        # Corti bills at once but answers late: the kill lands mid-call.
        await control.arm(
            {"kind": "delay", "seconds": 2.5, "method": "POST", "path": "/documents/"},
            {
                "kind": "delay",
                "seconds": 2.5,
                "method": "POST",
                "path": "/transcripts/",
            },
        )
        document_id = await request_document(
            gql, interaction_id, "Patient reports a cough."
        )
        transcript = job_of(
            await upload(gql, TRANSCRIPT, {"interactionId": interaction_id}, audio(2))
        )

        first = await _start_worker(sandbox, database_url)
        try:

            async def both_billed() -> bool:
                return len(await control.billed(interaction_id)) == 2

            await _until(both_billed)
            row = await _job_row(db, document_id)
            assert row.status == "RUNNING"
            assert row.leased_by is not None
            assert f":{first.pid}:" in row.leased_by
        finally:
            first.kill()
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        await control.clear_faults()

        second = await _start_worker(sandbox, database_url)
        try:
            jobs = [
                await wait_for_job(gql, document_id, within=20),
                await wait_for_job(gql, transcript["id"], within=20),
            ]
        finally:
            assert await _stop(second) == 0
        for job in jobs:
            assert job["status"] == "SUCCEEDED", job
            assert job["attempts"] == 2
        assert len(await control.billed()) == 2
        await assert_billed_once(control, db)
        assert await audio_rows(db) == 0

    async def test_sigkill_during_stateless_calls_then_restart(
        self,
        gql: GraphQLClient,
        db: Database,
        database_url: str,
        sandbox: SandboxServer,
        control: SandboxControl,
    ) -> None:
        """A killed extract-facts call cannot be looked up: not sent again, the
        job fails saying so. A killed dictation (still waiting for `usage`) is
        not billed and runs again with a new session."""
        await control.arm(
            {"kind": "delay", "seconds": 2.5, "path": "/tools/extract-facts"},
            {"kind": "delay_usage", "seconds": 2.5},
        )
        facts = job_of(
            await gql(
                FACTS, {"in": {"tenantId": "t1", "userId": "u1", "text": ["Cough."]}}
            )
        )
        dictation = job_of(
            await upload(gql, DICTATION, {"tenantId": "t1", "userId": "u1"}, audio(1))
        )
        first = await _start_worker(sandbox, database_url)
        try:

            async def mid_call() -> bool:
                facts_row = await _job_row(db, facts["id"])
                dictation_row = await _job_row(db, dictation["id"])
                return (
                    len(await control.billed(kind="facts")) == 1
                    and dictation_row.state.get("session_id") is not None
                    and facts_row.state.get("sent") is True
                    and "provisional_credits" in dictation_row.state
                )

            await _until(mid_call)
        finally:
            first.kill()
            await first.wait()
        await control.clear_faults()
        second = await _start_worker(sandbox, database_url)
        try:
            facts_done = await wait_for_job(gql, facts["id"], within=20)
            dictation_done = await wait_for_job(gql, dictation["id"], within=20)
        finally:
            assert await _stop(second) == 0
        assert facts_done["status"] == "FAILED"
        assert "not sent again" in facts_done["error"]
        assert facts_done["attempts"] == 2
        assert dictation_done["status"] == "SUCCEEDED", dictation_done
        assert dictation_done["attempts"] == 2
        # One facts call billed and unrecorded (no lookup at Corti), one
        # dictation billed and recorded; nothing billed twice.
        billed = await control.billed()
        assert sorted(b["kind"] for b in billed) == ["dictation", "facts"]
        [session] = [b for b in billed if b["kind"] == "dictation"]
        assert dictation_done["usage"]["externalId"] == session["id"]
        assert dictation_done["usage"]["source"] == "DICTATION"
        assert await audio_rows(db) == 0

    async def test_sigterm_releases_a_job_that_does_not_finish_in_time(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
        await control.arm(
            {"kind": "delay", "seconds": 1, "method": "POST", "path": "/documents/"}
        )
        job_id = await request_document(gql, interaction_id)
        async with run_worker(worker_shutdown_seconds=0.2) as worker:

            async def billed() -> bool:
                return len(await control.billed()) == 1

            await _until(billed)
            worker.stop()  # what SIGTERM does
        row = await _job_row(db, job_id)
        assert row.status == "QUEUED"  # released at once for another worker
        assert row.attempts == 0
        assert row.state.get("document_requested") is True

        async with run_worker():
            job = await wait_for_job(gql, job_id)
        assert job["status"] == "SUCCEEDED", job
        assert len(await control.billed()) == 1
        await assert_billed_once(control, db)

    async def test_sigterm_lets_running_jobs_finish(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
        await control.arm(
            {"kind": "delay", "seconds": 0.5, "method": "POST", "path": "/documents/"}
        )
        job_id = await request_document(gql, interaction_id)
        async with run_worker(worker_shutdown_seconds=5) as worker:

            async def billed() -> bool:
                return len(await control.billed()) == 1

            await _until(billed)
            worker.stop()
        row = await _job_row(db, job_id)
        assert row.status == "SUCCEEDED"
        assert row.attempts == 1
        await assert_billed_once(control, db)

    async def test_a_job_whose_workers_keep_dying_is_given_up(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql)
        job_id = await request_document(gql, interaction_id)
        for _ in range(3):  # three workers claimed it and died
            (claimed,) = await queue.claim(db, "doomed", limit=1, lease_seconds=0.01)
            assert str(claimed.id) == job_id
            await asyncio.sleep(0.03)
        async with run_worker(job_max_attempts=3):
            job = await wait_for_job(gql, job_id)
        assert job["status"] == "FAILED"
        assert job["attempts"] == 4
        assert job["error"] == (
            "gave up after 3 attempts, before generating the document"
        )
        assert await control.billed() == []
