"""The /streams websocket: client sessions and the sandbox's protocol script."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from corti_sandbox.testing import SandboxControl, SandboxServer
from service.corti import (
    CortiClient,
    CortiNotFound,
    CortiStreamDropped,
    CortiStreamRefused,
    StreamConfig,
    StreamTimeouts,
)
from tests.fixtures.corti import audio


class TestClientStream:
    @pytest.mark.asyncio
    async def test_happy_path(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        result = await corti.stream(interaction_id, audio(2.5))
        assert result.credits == Decimal("0.06")  # 3 started seconds x 0.02
        assert result.last_delta == Decimal("0.04")  # after 2 full seconds
        assert result.ended is True
        assert len(result.transcripts) == 3
        assert result.transcripts[-1].time.end == Decimal("2.5")
        assert len(result.facts) == 3
        billed = await control.billed(interaction_id)
        assert [(b["kind"], b["credits"]) for b in billed] == [
            ("stream", Decimal("0.06"))
        ]
        requests = (await control.stats())["requests"]
        assert [r["status"] for r in requests if r["path"].endswith("/streams")] == [
            101
        ]

    @pytest.mark.asyncio
    async def test_token_never_logged(
        self,
        corti: CortiClient,
        control: SandboxControl,
        interaction_id: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        old = await corti.access_token()
        await control.revoke_tokens()  # forces a 401 and a refresh on the upgrade
        await corti.stream(interaction_id, audio(0.5))
        new = await corti.access_token()
        assert old != new
        assert "token=REDACTED" in caplog.text
        for token in (old, new):
            assert token.split(".")[2] not in caplog.text

    @pytest.mark.asyncio
    async def test_facts_under_data_and_async_audio(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.configure(facts_key="data", delta_usage=False)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield audio(0.3)

        result = await corti.stream(interaction_id, chunks(), chunk_bytes=4000)
        assert result.credits == Decimal("0.04")  # 1.5 s -> 2 started seconds
        assert result.last_delta is None
        assert [f.text for f in result.facts] == [
            "Sandbox fact from segment 1.",
            "Sandbox fact from segment 2.",
        ]

    @pytest.mark.asyncio
    async def test_session_with_flush(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        config = StreamConfig(mode="transcription", output_locale="en")
        async with corti.open_stream(interaction_id, config) as session:
            await session.send_audio(audio(0.5))
            await session.flush()
            assert len(session.result().transcripts) == 1
            await session.send_audio(audio(0.25))
            result = await session.end()
        assert result.credits == Decimal("0.02")
        assert len(result.transcripts) == 2
        assert result.facts == []

    @pytest.mark.asyncio
    async def test_empty_stream_is_billed_zero(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        result = await corti.stream(interaction_id, b"")
        assert result.credits == Decimal(0)
        assert [b["credits"] for b in await control.billed()] == [Decimal(0)]

    @pytest.mark.asyncio
    async def test_config_denied(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        with pytest.raises(CortiStreamRefused) as caught:
            await corti.stream(
                interaction_id, audio(1), StreamConfig(primary_language="xx")
            )
        assert caught.value.retryable is False
        assert caught.value.error_type == "CONFIG_DENIED"
        assert caught.value.reason == "language unavailable"
        assert await control.billed() == []

    @pytest.mark.asyncio
    async def test_unknown_interaction_refused_before_upgrade(
        self, corti: CortiClient
    ) -> None:
        with pytest.raises(CortiNotFound):
            await corti.stream("00000000-0000-4000-8000-000000000000", audio(1))

    @pytest.mark.asyncio
    async def test_slow_config_answer_times_out(
        self, corti: CortiClient, control: SandboxControl, interaction_id: str
    ) -> None:
        await control.arm({"kind": "delay", "seconds": 0.5, "path": "/streams"})
        with pytest.raises(CortiStreamDropped) as caught:
            await corti.stream(
                interaction_id, audio(1), timeouts=StreamTimeouts(config=0.1)
            )
        assert caught.value.retryable is True
        assert "no config answer" in str(caught.value)
        assert await control.billed() == []


async def _raw(
    sandbox: SandboxServer, corti: CortiClient, interaction_id: str
) -> ClientConnection:
    token = quote(f"Bearer {await corti.access_token()}")
    url = f"{sandbox.wss_url}/interactions/{interaction_id}/streams?tenant-name=base&token={token}"
    return await connect(url)


async def _messages(ws: ClientConnection) -> list[dict[str, Any]]:
    return [json.loads(raw) async for raw in ws]


class TestSandboxScript:
    @pytest.mark.asyncio
    async def test_usage_then_ended_then_close_1000(
        self,
        sandbox: SandboxServer,
        corti: CortiClient,
        control: SandboxControl,
        interaction_id: str,
    ) -> None:
        ws = await _raw(sandbox, corti, interaction_id)
        await ws.send(json.dumps(StreamConfig().to_wire()))
        assert json.loads(await ws.recv()) == {"type": "CONFIG_ACCEPTED"}
        await ws.send(json.dumps(StreamConfig().to_wire()))
        assert json.loads(await ws.recv()) == {"type": "CONFIG_ALREADY_RECEIVED"}
        await ws.send(audio(0.5))
        await ws.send(json.dumps({"type": "end"}))
        kinds = [m["type"] for m in await _messages(ws)]
        assert kinds == ["transcript", "facts", "usage", "ENDED"]
        assert ws.close_code == 1000

    @pytest.mark.asyncio
    async def test_config_not_provided(
        self,
        sandbox: SandboxServer,
        corti: CortiClient,
        control: SandboxControl,
        interaction_id: str,
    ) -> None:
        await control.configure(config_timeout=0.1)
        ws = await _raw(sandbox, corti, interaction_id)
        messages = await asyncio.wait_for(_messages(ws), 5)
        assert [m["type"] for m in messages] == ["CONFIG_NOT_PROVIDED"]
        assert ws.close_code == 1000

    @pytest.mark.asyncio
    async def test_audio_before_config(
        self,
        sandbox: SandboxServer,
        corti: CortiClient,
        control: SandboxControl,
        interaction_id: str,
    ) -> None:
        ws = await _raw(sandbox, corti, interaction_id)
        await ws.send(audio(0.1))
        assert [m["type"] for m in await _messages(ws)] == ["CONFIG_MISSING"]

    @pytest.mark.asyncio
    async def test_unknown_message_gets_an_error(
        self,
        sandbox: SandboxServer,
        corti: CortiClient,
        control: SandboxControl,
        interaction_id: str,
    ) -> None:
        ws = await _raw(sandbox, corti, interaction_id)
        await ws.send(json.dumps(StreamConfig().to_wire()))
        await ws.recv()
        await ws.send(json.dumps({"type": "bogus"}))
        error = json.loads(await ws.recv())
        assert error["type"] == "error"
        assert error["error"]["status"] == 400
        await ws.close()

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("query", "status"),
        [
            ("tenant-name=base&token=Bearer%20nope", 401),
            ("tenant-name=base", 401),
            ("tenant-name=other&token={token}", 403),
            ("token={token}", 400),
        ],
    )
    async def test_refused_before_upgrade(
        self,
        sandbox: SandboxServer,
        corti: CortiClient,
        interaction_id: str,
        query: str,
        status: int,
    ) -> None:
        token = quote(f"Bearer {await corti.access_token()}")
        url = f"{sandbox.wss_url}/interactions/{interaction_id}/streams?{query.format(token=token)}"
        with pytest.raises(InvalidStatus) as caught:
            await connect(url)
        assert caught.value.response.status_code == status
