"""CortiClient's stateless calls (extract-facts, coding, guided documents) and
`/transcribe` dictation sessions, against the sandbox over real sockets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from corti_sandbox.testing import SandboxControl
from service.corti import (
    CortiBadRequest,
    CortiClient,
    CortiOutcomeUnknown,
    CortiStreamDropped,
    CortiStreamRefused,
    StreamConfig,
)
from service.corti.stateless_schemas import DictationCommand, DictationConfig
from tests.fixtures.corti import audio

pytestmark = pytest.mark.asyncio


class TestStatelessCalls:
    async def test_credits_match_the_ledger(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        facts = await corti.extract_facts(["a" * 101], output_language="en")
        assert facts.credits == Decimal("0.07")
        assert facts.facts[0].text
        codes = await corti.predict_codes(["cpt"], texts=["b" * 10], max_candidates=1)
        assert codes.credits == Decimal("0.11")
        assert len(codes.candidates) == 1
        lone = await corti.create_guided_document(template_key="soap", context="c" * 5)
        tied = await corti.create_guided_document(
            template_key="soap", context="d" * 5, interaction_id=interaction_id
        )
        assert lone.document.id
        assert lone.document.interaction_id is None
        assert tied.document.interaction_id == interaction_id
        assert lone.credits == tied.credits == Decimal("0.11")
        by_document = await corti.predict_codes(
            ["cpt", "icd10pcs"], document_id=lone.document.id
        )
        assert by_document.credits == Decimal("0.21")
        billed = [
            (b["kind"], Decimal(str(b["credits"]))) for b in await control.billed()
        ]
        assert billed == [
            ("facts", Decimal("0.07")),
            ("coding", Decimal("0.11")),
            ("document", Decimal("0.11")),
            ("document", Decimal("0.11")),
            ("coding", Decimal("0.21")),
        ]

    async def test_lost_answers_are_ambiguous_and_not_repeated(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        await control.arm({"kind": "lose_answer", "count": 3})
        with pytest.raises(CortiOutcomeUnknown):
            await corti.extract_facts(["x"])
        with pytest.raises(CortiOutcomeUnknown):
            await corti.predict_codes(["cpt"], texts=["x"])
        with pytest.raises(CortiOutcomeUnknown):
            await corti.create_guided_document(template_key="soap", context="x")
        # Each was billed once and tried once.
        assert len(await control.billed()) == 3
        stats = await control.stats()
        posts = [r for r in stats["requests"] if r["method"] == "POST"]
        assert len([r for r in posts if "/tools/" in r["path"]]) == 2

    async def test_503_after_sending_is_ambiguous_a_400_is_not(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        await control.arm({"kind": "error", "status": 503, "path": "/tools/"})
        with pytest.raises(CortiOutcomeUnknown):
            await corti.extract_facts(["x"])
        with pytest.raises(CortiBadRequest):
            await corti.predict_codes(["not-a-system"], texts=["x"])
        assert await control.billed() == []


class TestDictation:
    async def test_session_reports_usage_and_running_deltas(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        seen: list[Decimal] = []
        config = DictationConfig(
            commands=[DictationCommand(id="next", phrases=["next section"])]
        )
        async with corti.open_dictation(config, on_delta=seen.append) as session:
            assert session.session_id
            await session.send_audio(audio(2.5))
            result = await session.end()
        assert seen == [Decimal("0.015"), Decimal("0.030")]
        assert result.last_delta == Decimal("0.030")
        assert result.credits == Decimal("0.045")
        assert result.ended
        assert [c.id for c in result.commands] == ["next"]
        assert len(result.transcripts) == 3
        [billed] = await control.billed(kind="dictation")
        assert billed["id"] == result.session_id == session.session_id

    async def test_delta_after_usage_is_ignored(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm({"kind": "late_delta_usage", "count": 2})
        seen: list[Decimal] = []
        async with corti.open_dictation(on_delta=seen.append) as session:
            await session.send_audio(audio(1))
            result = await session.end()
        assert result.credits == Decimal("0.015")
        assert result.late_deltas == 1
        assert seen == [Decimal("0.015")]  # the late 0.030 never reached it
        streamed: list[Decimal] = []
        async with corti.open_stream(
            interaction_id, StreamConfig(), on_delta=streamed.append
        ) as stream:
            await stream.send_audio(audio(1))
            final = await stream.end()
        assert final.credits == Decimal("0.02")
        assert final.late_deltas == 1
        assert streamed == [Decimal("0.02")]

    async def test_closed_before_usage_raises_dropped_and_bills_nothing(
        self, corti: CortiClient, control: SandboxControl
    ) -> None:
        await control.arm({"kind": "drop_stream", "path": "/transcribe"})
        async with corti.open_dictation() as session:
            await session.send_audio(audio(1))
            with pytest.raises(CortiStreamDropped):
                await session.end()
        assert await control.billed() == []

    async def test_refused_config(self, corti: CortiClient) -> None:
        with pytest.raises(CortiStreamRefused) as caught:
            async with corti.open_dictation(DictationConfig(primary_language="xx")):
                pass
        assert caught.value.error_type == "CONFIG_DENIED"
