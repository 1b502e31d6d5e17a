"""Every sandbox fault switch against the real client, with the billing ledger.

The point of each test: whatever failed, the ledger and what the client can
find afterwards agree, and the client never repeats a billing create itself.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from corti_sandbox.testing import SandboxControl
from service.corti import (
    CortiClient,
    CortiInsufficientBalance,
    CortiOutcomeUnknown,
    CortiStreamDropped,
    CortiUnavailable,
    RetryPolicy,
)
from tests.fixtures.corti import MakeCorti, audio


async def _statuses(control: SandboxControl, suffix: str) -> list[int]:
    requests = (await control.stats())["requests"]
    return [r["status"] for r in requests if r["path"].endswith(suffix)]


async def _until_idle(control: SandboxControl) -> None:
    """Wait (bounded) until the sandbox has no request in flight."""
    for _ in range(500):
        if (await control.stats())["in_flight"] == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the sandbox still has requests in flight")


class TestServerErrors:
    @pytest.mark.asyncio
    async def test_503_then_success_is_retried(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm({"kind": "error", "status": 503, "count": 2})
        interaction = await corti.get_interaction(interaction_id)
        assert interaction.id == interaction_id
        assert await _statuses(control, interaction_id) == [503, 503, 200]

    @pytest.mark.asyncio
    async def test_5xx_gives_up_after_max_attempts(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm({"kind": "error", "status": 502, "count": 10})
        with pytest.raises(CortiUnavailable) as caught:
            await corti.get_interaction(interaction_id)
        assert caught.value.status == 502
        assert caught.value.retryable is True
        assert len(await _statuses(control, interaction_id)) == corti.retry.max_attempts

    @pytest.mark.asyncio
    async def test_503_on_a_billing_create_is_not_repeated(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        recording = await corti.upload_recording(interaction_id, audio(1))
        await control.arm(
            {"kind": "error", "status": 503, "method": "POST", "path": "/transcripts/"}
        )
        with pytest.raises(CortiOutcomeUnknown) as caught:
            await corti.create_transcript(interaction_id, recording.recording_id)
        assert caught.value.retryable is True
        assert caught.value.maybe_billed is True
        assert caught.value.status == 503
        assert await _statuses(control, "/transcripts/") == [503]
        # The caller's recovery: look first, then create again.
        assert (
            await corti.find_transcripts(interaction_id, recording.recording_id) == []
        )
        transcript = await corti.create_transcript(
            interaction_id, recording.recording_id
        )
        billed = await control.billed()
        assert [(b["id"], b["credits"]) for b in billed] == [
            (transcript.id, transcript.credits)
        ]

    @pytest.mark.asyncio
    async def test_retry_after_is_honoured(
        self, make_corti: MakeCorti, control: SandboxControl
    ) -> None:
        await control.arm({"kind": "error", "status": 503, "retry_after": 1})
        policy = RetryPolicy(base_delay=0.01, max_delay=0.05, max_retry_after=5)
        async with make_corti(retry=policy) as corti:
            started = time.monotonic()
            await corti.create_interaction("e")
            assert time.monotonic() - started >= 0.95


class TestInsufficientBalance:
    @pytest.mark.asyncio
    async def test_a_few_429_are_retried(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm(
            {"kind": "insufficient_balance", "count": 2, "retry_after": 0}
        )
        await corti.get_interaction(interaction_id)
        assert await _statuses(control, interaction_id) == [429, 429, 200]

    @pytest.mark.asyncio
    async def test_persistent_429_fails_with_the_reason(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        recording = await corti.upload_recording(interaction_id, audio(1))
        await control.arm({"kind": "insufficient_balance", "count": 10})
        with pytest.raises(CortiInsufficientBalance) as caught:
            await corti.create_transcript(interaction_id, recording.recording_id)
        assert caught.value.status == 429
        assert caught.value.retryable is False
        assert "Insufficient balance" in caught.value.reason
        assert (
            len(await _statuses(control, "/transcripts/"))
            == corti.retry.max_429_attempts
        )
        assert await control.billed() == []


class TestSlowAnswers:
    @pytest.mark.asyncio
    async def test_timeout_on_a_read_is_retried(
        self, make_corti: MakeCorti, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm({"kind": "delay", "seconds": 1.0, "method": "GET"})
        async with make_corti(timeout=0.3) as corti:
            assert (await corti.get_interaction(interaction_id)).id == interaction_id
        # The slow answer is still on its way: wait until the sandbox has sent it,
        # then both GETs must be in its log (the one that timed out, the retry).
        await _until_idle(control)
        assert await _statuses(control, interaction_id) == [200, 200]
        assert [f["remaining"] for f in await control.faults()] == [0]

    @pytest.mark.asyncio
    async def test_timeout_on_a_create_leaves_it_billed_and_findable(
        self, make_corti: MakeCorti, control: SandboxControl, interaction_id: str
    ) -> None:
        async with make_corti(timeout=0.3) as corti:
            recording = await corti.upload_recording(interaction_id, audio(3))
            await control.arm(
                {"kind": "delay", "seconds": 0.8, "path": "/transcripts/"}
            )
            with pytest.raises(CortiOutcomeUnknown) as caught:
                await corti.create_transcript(interaction_id, recording.recording_id)
            assert caught.value.status is None
            found = await corti.find_transcripts(interaction_id, recording.recording_id)
        billed = await control.billed()
        assert [(t.id, t.credits) for t in found] == [
            (b["id"], b["credits"]) for b in billed
        ]
        assert found[0].credits == Decimal("0.03")


class TestLostAnswers:
    @pytest.mark.asyncio
    async def test_dropped_document_answer(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm({"kind": "lose_answer", "mode": "drop"})
        with pytest.raises(CortiOutcomeUnknown):
            await corti.generate_document(
                interaction_id, template_key="soap", context="hello", name="job-7"
            )
        assert await _statuses(control, "/documents/") == [0]
        found = await corti.find_documents(interaction_id, "job-7")
        billed = await control.billed()
        assert len(found) == 1
        assert [(b["kind"], b["id"], b["credits"]) for b in billed] == [
            ("document", found[0].id, found[0].credits)
        ]

    @pytest.mark.asyncio
    async def test_500_without_body_after_billing(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        recording = await corti.upload_recording(interaction_id, audio(1.5))
        await control.arm({"kind": "lose_answer", "mode": "500"})
        with pytest.raises(CortiOutcomeUnknown) as caught:
            await corti.create_transcript(interaction_id, recording.recording_id)
        assert caught.value.status == 500
        found = await corti.find_transcripts(interaction_id, recording.recording_id)
        billed = await control.billed()
        assert [(t.id, t.credits) for t in found] == [
            (b["id"], b["credits"]) for b in billed
        ]

    @pytest.mark.asyncio
    async def test_lose_answer_spares_other_calls(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm({"kind": "lose_answer"})
        await corti.get_interaction(interaction_id)
        await corti.upload_recording(interaction_id, audio(1))
        assert (await control.faults())[0]["remaining"] == 1


class TestRevokedTokens:
    @pytest.mark.asyncio
    async def test_revocation_mid_run(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        recording = await corti.upload_recording(interaction_id, audio(1))
        await control.revoke_tokens()
        transcript = await corti.create_transcript(
            interaction_id, recording.recording_id
        )
        assert await _statuses(control, "/transcripts/") == [401, 201]
        billed = await control.billed()
        assert [b["id"] for b in billed] == [transcript.id]

    @pytest.mark.asyncio
    async def test_revocation_before_a_stream(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await corti.get_interaction(interaction_id)
        await control.revoke_tokens()
        result = await corti.stream(interaction_id, audio(1))
        assert result.credits == Decimal("0.02")
        assert await _statuses(control, "/streams") == [401, 101]


class TestDroppedStreams:
    @pytest.mark.asyncio
    @pytest.mark.parametrize("after_bytes", [16_000, 0])
    async def test_drop_mid_stream_or_at_end(
        self,
        corti: CortiClient,
        control: SandboxControl,
        interaction_id: str,
        after_bytes: int,
    ) -> None:
        await control.arm({"kind": "drop_stream", "after_bytes": after_bytes})
        with pytest.raises(CortiStreamDropped) as caught:
            await corti.stream(interaction_id, audio(2))
        assert caught.value.retryable is True
        assert "1011" in str(caught.value)
        assert await control.billed() == []
        # The next stream is not dropped and is billed once.
        result = await corti.stream(interaction_id, audio(2))
        billed = await control.billed()
        assert [(b["kind"], b["credits"]) for b in billed] == [
            ("stream", result.credits)
        ]
