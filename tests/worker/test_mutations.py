"""Job mutations without a worker: what is stored, who may, and bad input.

Bad input is refused with a code and stores no job and no audio.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from service.auth.webhooks import sign
from service.db.models import Job, JobAudioChunk
from service.db.session import Database
from service.jobs.audio import CHUNK_BYTES
from tests.fixtures.app import (
    GraphQLClient,
    Server,
    make_key,
    start_server,
    stop_server,
)
from tests.fixtures.operations import REGISTER_INPUT as REGISTER
from tests.worker.helpers import (
    CREATE,
    DOCUMENT,
    JOB,
    STREAM,
    TRANSCRIPT,
    audio_rows,
    job_count,
    job_of,
    upload,
    worker_settings,
)

pytestmark = pytest.mark.asyncio


async def _register(gql: GraphQLClient, interaction: str, tenant: str = "t1") -> None:
    await gql.data(
        REGISTER,
        {"in": {"interactionId": interaction, "tenantId": tenant, "userId": "u1"}},
    )


def _code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


def _doc(interaction: str, context: list[str]) -> dict[str, Any]:
    return {
        "in": {"interactionId": interaction, "templateKey": "soap", "context": context}
    }


class TestStored:
    async def test_job_and_audio_are_stored_before_the_answer(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        await _register(gql, "i-1")
        data = b"\x01" * (2 * CHUNK_BYTES + 1000)
        job = job_of(await upload(gql, TRANSCRIPT, {"interactionId": "i-1"}, data))
        assert job["kind"] == "requestTranscript"
        assert job["attempts"] == 0
        async with db.read() as session:
            row = await session.scalar(select(Job))
            chunks = (
                await session.execute(
                    select(func.length(JobAudioChunk.data)).order_by(JobAudioChunk.seq)
                )
            ).scalars()
            sizes = list(chunks)
        assert row is not None
        assert str(row.id) == job["id"]
        assert row.status == "QUEUED"
        assert row.interaction_id == "i-1"
        assert row.tenant_id == "t1"
        assert row.audio_bytes == len(data)
        assert sizes == [CHUNK_BYTES, CHUNK_BYTES, 1000]

        shown = (await gql.data(JOB, {"id": job["id"]}))["job"]
        assert shown["status"] == "QUEUED"
        assert shown["interaction"]["id"] == "i-1"
        assert shown["usage"] is None
        assert shown["error"] is None

    async def test_document_context_is_joined_by_newlines(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        await _register(gql, "i-1")
        job_of(await gql(DOCUMENT, _doc("i-1", ["line one", "", "line three"])))
        async with db.read() as session:
            row = await session.scalar(select(Job))
        assert row is not None
        assert row.payload["context"] == "line one\n\nline three"
        assert row.payload["template_key"] == "soap"

    async def test_visibility_of_jobs(self, gql: GraphQLClient, db: Database) -> None:
        await _register(gql, "i-1", "t1")
        ingest = await make_key(db, "ingest", "t1")
        other_ingest = await make_key(db, "ingest", "t1")
        reader = await make_key(db, "reader", "t1")
        stranger = await make_key(db, "reader", "t2")
        body = await gql(DOCUMENT, _doc("i-1", ["text"]), key=ingest)
        job_id = job_of(body)["id"]
        for key, visible in [
            (ingest, True),
            (other_ingest, False),
            (reader, True),
            (stranger, False),
            (gql.key, True),
        ]:
            data = await gql.data(JOB, {"id": job_id}, key=key)
            assert (data["job"] is not None) is visible, key


class TestRefused:
    async def test_unknown_or_foreign_interaction_is_not_found(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        await _register(gql, "i-t2", "t2")
        t1_key = await make_key(db, "ingest", "t1")
        for interaction, key in [("nope", None), ("i-t2", t1_key)]:
            bodies = [
                await upload(
                    gql, TRANSCRIPT, {"interactionId": interaction}, b"abc", key=key
                ),
                await upload(
                    gql, STREAM, {"interactionId": interaction}, b"abc", key=key
                ),
                await gql(DOCUMENT, _doc(interaction, ["text"]), key=key),
            ]
            assert [_code(b) for b in bodies] == ["NOT_FOUND"] * 3
        assert await job_count(db) == 0
        assert await audio_rows(db) == 0

    async def test_missing_empty_or_doubled_audio(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        await _register(gql, "i-1")
        cases = [
            await gql(TRANSCRIPT, {"in": {"interactionId": "i-1"}}),
            await upload(gql, TRANSCRIPT, {"interactionId": "i-1"}, b""),
            await upload(gql, STREAM, {"interactionId": "i-1"}, b""),
            await upload(
                gql,
                TRANSCRIPT,
                {"interactionId": "i-1", "recordingId": "r-1"},
                b"abc",
            ),
            await gql(STREAM, {"in": {"interactionId": "i-1", "audio": "not a file"}}),
        ]
        for body in cases:
            assert _code(body) == "BAD_USER_INPUT", body
            assert "input.audio" in body["errors"][0]["message"]
        assert await job_count(db) == 0
        assert await audio_rows(db) == 0

    async def test_empty_document_context(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        await _register(gql, "i-1")
        for context in ([], [""], ["  ", "\n"]):
            body = await gql(DOCUMENT, _doc("i-1", context))
            assert _code(body) == "BAD_USER_INPUT"
            assert "input.context" in body["errors"][0]["message"]
        body = await gql(
            DOCUMENT,
            {"in": {"interactionId": "i-1", "templateKey": " ", "context": ["x"]}},
        )
        assert _code(body) == "BAD_USER_INPUT"
        assert await job_count(db) == 0

    async def test_bad_create_interaction_input(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        base = {"tenantId": "t1", "userId": "u1", "encounterIdentifier": "v1"}
        for changes in (
            {"encounterStatus": "done"},
            {"encounterType": "party"},
            {"encounterIdentifier": " "},
            {"tenantId": ""},
        ):
            body = await gql(CREATE, {"in": {**base, **changes}})
            assert _code(body) == "BAD_USER_INPUT", changes
        t2_key = await make_key(db, "ingest", "t2")
        assert _code(await gql(CREATE, {"in": base}, key=t2_key)) == "FORBIDDEN"
        assert await job_count(db) == 0

    async def test_readers_and_webhooks_cannot_queue_jobs(
        self, gql: GraphQLClient, server: Server, db: Database
    ) -> None:
        await _register(gql, "i-1")
        reader = await make_key(db, "reader")
        assert _code(await gql(DOCUMENT, _doc("i-1", ["x"]), key=reader)) == (
            "FORBIDDEN"
        )
        raw = json.dumps({"query": DOCUMENT, "variables": _doc("i-1", ["x"])}).encode()
        response = await gql.http.post(
            "/graphql",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-Webhook-Signature": sign("whsec-test-one", raw),
            },
        )
        assert _code(response.json()) == "FORBIDDEN"
        assert await job_count(db) == 0


class TestOversize:
    async def test_audio_over_the_limit_is_refused(
        self, db: Database, database_url: str, admin_key: str
    ) -> None:
        settings = worker_settings(database_url, max_upload_bytes=100_000)
        uv, task, url = await start_server(settings)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                gql = GraphQLClient(http=http, key=admin_key)
                await _register(gql, "i-1")
                too_big = await upload(
                    gql, TRANSCRIPT, {"interactionId": "i-1"}, b"\x00" * 100_001
                )
                assert _code(too_big) == "BAD_USER_INPUT"
                assert "100000 bytes" in too_big["errors"][0]["message"]
                assert await job_count(db) == 0
                assert await audio_rows(db) == 0

                # Corti's limit is per interaction: queued audio counts.
                job_of(
                    await upload(
                        gql, TRANSCRIPT, {"interactionId": "i-1"}, b"\x00" * 60_000
                    )
                )
                second = await upload(
                    gql, STREAM, {"interactionId": "i-1"}, b"\x00" * 60_000
                )
                assert _code(second) == "BAD_USER_INPUT"
                assert "per interaction" in second["errors"][0]["message"]
                assert await job_count(db) == 1
        finally:
            await stop_server(uv, task)
