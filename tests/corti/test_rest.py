"""REST calls of CortiClient against the sandbox: shapes, credits, processing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from corti_sandbox.testing import SandboxControl
from service.corti import (
    CortiBadRequest,
    CortiClient,
    CortiNotFound,
    CortiOutcomeUnknown,
)
from service.corti.schemas import (
    FactInput,
    FactsContext,
    StringContext,
    TranscriptContext,
    TranscriptContextData,
    parse_json,
)
from tests.fixtures.corti import audio


def test_parse_json_keeps_decimals_exact() -> None:
    data = parse_json(b'{"credits": 0.1, "n": 3, "big": 12345678901234567890.123}')
    assert data["credits"] == Decimal("0.1")
    assert isinstance(data["credits"], Decimal)
    assert data["n"] == 3
    assert data["big"] == Decimal("12345678901234567890.123")


class TestInteractions:
    @pytest.mark.asyncio
    async def test_create_get_list(self, corti: CortiClient) -> None:
        created = await corti.create_interaction("enc-42", title="Check-up")
        assert created.websocket_url.endswith(
            f"/interactions/{created.interaction_id}/streams?tenant-name=base"
        )
        fetched = await corti.get_interaction(created.interaction_id)
        assert fetched.id == created.interaction_id
        assert fetched.encounter.identifier == "enc-42"
        assert fetched.encounter.title == "Check-up"
        assert fetched.encounter.status == "planned"
        listed = await corti.list_interactions(page_size=50)
        assert created.interaction_id in {i.id for i in listed}

    @pytest.mark.asyncio
    async def test_pages_end_with_an_empty_page(self, corti: CortiClient) -> None:
        ids = {
            (await corti.create_interaction(f"e{i}")).interaction_id for i in range(3)
        }
        first = await corti.list_interactions(page_size=2, index=1)
        second = await corti.list_interactions(page_size=2, index=2)
        assert len(first) == 2
        assert len(second) == 1
        assert {i.id for i in first + second} == ids
        assert await corti.list_interactions(page_size=2, index=3) == []

    @pytest.mark.asyncio
    async def test_unknown_interaction_is_not_found(self, corti: CortiClient) -> None:
        missing = "00000000-0000-4000-8000-000000000000"
        with pytest.raises(CortiNotFound) as caught:
            await corti.get_interaction(missing)
        assert caught.value.status == 404
        assert caught.value.retryable is False
        assert missing in (caught.value.detail or "")
        with pytest.raises(CortiNotFound):
            await corti.upload_recording(missing, b"abc")

    @pytest.mark.asyncio
    async def test_delete(self, corti: CortiClient, interaction_id: str) -> None:
        await corti.delete_interaction(interaction_id)
        with pytest.raises(CortiNotFound):
            await corti.get_interaction(interaction_id)


class TestTranscripts:
    @pytest.mark.asyncio
    async def test_upload_and_transcribe(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        recording = await corti.upload_recording(interaction_id, audio(2.5))
        transcript = await corti.create_transcript(
            interaction_id, recording.recording_id
        )
        assert transcript.status == "completed"
        assert transcript.recording_id == recording.recording_id
        assert transcript.credits == Decimal("0.03")  # 3 started seconds
        assert transcript.transcripts
        billed = await control.billed()
        assert [(b["kind"], b["id"], b["credits"]) for b in billed] == [
            ("transcript", transcript.id, Decimal("0.03"))
        ]
        got = await corti.get_transcript(interaction_id, transcript.id)
        assert got.credits == transcript.credits
        items = await corti.list_transcripts(interaction_id, full=True)
        assert [i.id for i in items] == [transcript.id]
        assert items[0].transcript is not None
        found = await corti.find_transcripts(interaction_id, recording.recording_id)
        assert [t.id for t in found] == [transcript.id]

    @pytest.mark.asyncio
    async def test_empty_list_is_null_on_the_wire(
        self, corti: CortiClient, interaction_id: str
    ) -> None:
        assert await corti.list_transcripts(interaction_id) == []

    @pytest.mark.asyncio
    async def test_upload_from_async_chunks(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield audio(0.5)

        chunked = await corti.upload_recording(interaction_id, chunks())
        sized = await corti.upload_recording(interaction_id, chunks(), size=4 * 16000)
        for recording in (chunked, sized):
            transcript = await corti.create_transcript(
                interaction_id, recording.recording_id
            )
            assert transcript.credits == Decimal("0.02")

    @pytest.mark.asyncio
    async def test_processing_is_polled_then_fetched(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.configure(
            processing_threshold_bytes=32_000, processing_seconds=0.2
        )
        recording = await corti.upload_recording(interaction_id, audio(4))
        transcript = await corti.create_transcript(
            interaction_id, recording.recording_id
        )
        assert transcript.status == "completed"
        assert transcript.credits == Decimal("0.04")
        requests = (await control.stats())["requests"]
        create = next(r for r in requests if r["path"].endswith("/transcripts/"))
        assert create["status"] == 202
        polls = [r for r in requests if r["path"].endswith("/status")]
        assert polls
        assert all(r["status"] == 200 for r in polls)
        assert requests[-1]["path"].endswith(transcript.id)
        billed = await control.billed()
        assert [b["credits"] for b in billed] == [Decimal("0.04")]

    @pytest.mark.asyncio
    async def test_processing_without_wait(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.configure(
            processing_threshold_bytes=32_000, processing_seconds=0.3
        )
        recording = await corti.upload_recording(interaction_id, audio(2))
        pending = await corti.create_transcript(
            interaction_id, recording.recording_id, wait=False
        )
        assert pending.status == "processing"
        assert pending.credits == Decimal(0)
        assert pending.transcripts is None
        done = await corti.wait_for_transcript(interaction_id, pending.id)
        assert done.credits == Decimal("0.02")

    @pytest.mark.asyncio
    async def test_failed_wait_is_reported_as_maybe_billed(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.configure(
            processing_threshold_bytes=32_000, processing_seconds=0.3
        )
        recording = await corti.upload_recording(interaction_id, audio(2))
        await control.arm(
            {"kind": "error", "status": 500, "count": 10, "path": "/status"}
        )
        with pytest.raises(CortiOutcomeUnknown) as caught:
            await corti.create_transcript(interaction_id, recording.recording_id)
        assert caught.value.maybe_billed is True
        await control.clear_faults()
        found = await corti.find_transcripts(interaction_id, recording.recording_id)
        assert [(t.status, t.credits) for t in found] == [
            ("completed", Decimal("0.02"))
        ]
        billed = await control.billed()
        assert [(b["id"], b["credits"]) for b in billed] == [
            (found[0].id, found[0].credits)
        ]

    @pytest.mark.asyncio
    async def test_bad_requests(self, corti: CortiClient, interaction_id: str) -> None:
        recording = await corti.upload_recording(interaction_id, audio(1))
        with pytest.raises(CortiBadRequest) as caught:
            await corti.create_transcript(
                interaction_id, recording.recording_id, primary_language="xx"
            )
        assert caught.value.status == 400
        assert "language" in (caught.value.detail or "")
        with pytest.raises(CortiBadRequest):
            await corti.upload_recording(interaction_id, b"")
        with pytest.raises(CortiNotFound):
            await corti.create_transcript(
                interaction_id, "00000000-0000-4000-8000-000000000001"
            )


class TestDocuments:
    @pytest.mark.asyncio
    async def test_generate_list_get_find(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        document = await corti.generate_document(
            interaction_id, template_key="soap", context="x" * 250, name="job-1"
        )
        assert document.credits == Decimal("0.13")  # 0.10 + 3 x 0.01
        assert document.name == "job-1"
        assert document.template_ref == "soap"
        assert document.sections
        assert (await corti.get_document(interaction_id, document.id)) == document
        assert [d.id for d in await corti.list_documents(interaction_id)] == [
            document.id
        ]
        assert [d.id for d in await corti.find_documents(interaction_id, "job-1")] == [
            document.id
        ]
        assert await corti.find_documents(interaction_id, "job-2") == []
        billed = await control.billed(interaction_id)
        assert [(b["kind"], b["credits"]) for b in billed] == [
            ("document", Decimal("0.13"))
        ]

    @pytest.mark.asyncio
    async def test_all_context_kinds(
        self, corti: CortiClient, interaction_id: str
    ) -> None:
        document = await corti.generate_document(
            interaction_id,
            template_key="soap",
            context=[
                StringContext(data="a" * 40),
                TranscriptContext(data=TranscriptContextData(text="b" * 40)),
                FactsContext(data=[FactInput(text="c" * 30, group="other")]),
            ],
        )
        assert document.credits == Decimal("0.12")  # 110 chars

    @pytest.mark.asyncio
    async def test_empty_context_is_refused(
        self, corti: CortiClient, interaction_id: str
    ) -> None:
        with pytest.raises(CortiBadRequest):
            await corti.generate_document(
                interaction_id, template_key="soap", context=[]
            )
