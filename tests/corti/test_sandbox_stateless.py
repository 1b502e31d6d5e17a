"""The sandbox's stateless calls (extract-facts, coding, guided documents) and
its `/transcribe` websocket, checked over raw HTTP and a raw websocket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from corti_sandbox.testing import SandboxControl, SandboxServer
from tests.corti.test_sandbox import _headers, _interaction
from tests.fixtures.corti import audio

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def http(
    sandbox: SandboxServer, control: SandboxControl
) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on the (freshly reset) sandbox."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=5) as client:
        yield client


def _exact(response: httpx.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal)


class TestStatelessRest:
    async def test_extract_facts_bills_the_tenant(
        self, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        headers = await _headers(http)
        body = {
            "context": [{"type": "text", "text": "x" * 150}],
            "outputLanguage": "en",
        }
        answer = await http.post("/v2/tools/extract-facts", json=body, headers=headers)
        assert answer.status_code == 200
        data = _exact(answer)
        assert data["usageInfo"] == {"creditsConsumed": Decimal("0.07")}
        assert data["outputLanguage"] == "en"
        assert {"group", "value", "text"} == set(data["facts"][0])
        [billed] = await control.billed(kind="facts")
        assert billed["interaction_id"] is None
        assert billed["tenant"] == "base"
        assert Decimal(str(billed["credits"])) == Decimal("0.07")

    async def test_bad_tool_input_is_400_and_unbilled(
        self, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        headers = await _headers(http)
        bad = [
            ("/v2/tools/extract-facts", {"context": [], "outputLanguage": "en"}),
            ("/v2/tools/extract-facts", {"context": [{"type": "text", "text": "a"}]}),
            (
                "/v2/tools/coding/",
                {"system": ["nope"], "context": [{"type": "text", "text": "a"}]},
            ),
            (
                "/v2/tools/coding/",
                {
                    "system": ["cpt"],
                    "context": [
                        {
                            "type": "documentId",
                            "documentId": "00000000-0000-4000-8000-000000000000",
                        }
                    ],
                },
            ),
        ]
        statuses = []
        for path, body in bad:
            answer = await http.post(path, json=body, headers=headers)
            statuses.append(answer.status_code)
            assert set(answer.json()) == {"requestid", "status", "type", "detail"}
        assert statuses == [400, 400, 400, 404]
        assert await control.billed() == []
        # Corti's exact paths: no trailing slash on extract-facts, one on coding.
        assert (
            await http.post("/v2/tools/coding", json={}, headers=headers)
        ).status_code == 404

    async def test_coding_counts_systems_text_and_documents(
        self, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        headers = await _headers(http)
        interaction_id = await _interaction(http, headers)
        document = await http.post(
            f"/v2/interactions/{interaction_id}/documents/",
            json={
                "context": [{"type": "string", "data": "note"}],
                "templateKey": "soap",
                "outputLanguage": "en",
            },
            headers=headers,
        )
        body = {
            "system": ["icd10cm-outpatient", "cpt"],
            "context": [
                {"type": "text", "text": "y" * 99},
                {"type": "documentId", "documentId": document.json()["id"]},
            ],
            "filter": {"include": ["E11"]},
            "maxCandidates": 1,
        }
        answer = await http.post("/v2/tools/coding/", json=body, headers=headers)
        assert answer.status_code == 200
        data = _exact(answer)
        # 2 systems, 99 + 46 characters of section text -> 0.20 + 0.02.
        assert data["usageInfo"] == {"creditsConsumed": Decimal("0.22")}
        assert len(data["codes"]) == 2
        assert len(data["candidates"]) == 1
        assert [b["kind"] for b in await control.billed()] == ["document", "coding"]

    async def test_guided_document_with_and_without_interaction(
        self, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        headers = await _headers(http)
        interaction_id = await _interaction(http, headers)
        body: dict[str, Any] = {
            "context": [{"type": "string", "data": "z" * 120}],
            "templateKey": "soap",
            "outputLanguage": "en",
        }
        lone = await http.post("/v2/documents/", json=body, headers=headers)
        tied = await http.post(
            "/v2/documents/",
            json={**body, "interactionId": interaction_id},
            headers=headers,
        )
        assert lone.status_code == tied.status_code == 201
        assert set(_exact(lone)) == {"document", "usageInfo"}
        assert _exact(lone)["usageInfo"] == {"creditsConsumed": Decimal("0.12")}
        assert "interactionId" not in lone.json()["document"]
        assert "usageInfo" not in lone.json()["document"]
        assert tied.json()["document"]["interactionId"] == interaction_id
        ledger = await control.billed(kind="document")
        assert [b["interaction_id"] for b in ledger] == [None, interaction_id]
        assert [b["id"] for b in ledger] == [
            lone.json()["document"]["id"],
            tied.json()["document"]["id"],
        ]
        unknown = await http.post(
            "/v2/documents/",
            json={**body, "interactionId": "00000000-0000-4000-8000-000000000000"},
            headers=headers,
        )
        assert unknown.status_code == 404

    async def test_lose_answer_bills_stateless_calls(
        self, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        headers = await _headers(http)
        await control.arm({"kind": "lose_answer", "mode": "500"})
        body = {"context": [{"type": "text", "text": "a"}], "outputLanguage": "en"}
        answer = await http.post("/v2/tools/extract-facts", json=body, headers=headers)
        assert answer.status_code == 500
        assert len(await control.billed(kind="facts")) == 1


async def _dictation(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> ClientConnection:
    token = (await _headers(http))["Authorization"]
    url = (
        f"{sandbox.url.replace('http', 'ws', 1)}/audio-bridge/v2/transcribe"
        f"?tenant-name=base&token={quote(token)}"
    )
    return await connect(url)


async def _messages(ws: ClientConnection) -> list[dict[str, Any]]:
    received = []
    try:
        async for raw in ws:
            received.append(json.loads(raw, parse_float=Decimal))
    except ConnectionClosed:
        pass
    return received


class TestTranscribe:
    async def test_script_and_credits(
        self, sandbox: SandboxServer, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        ws = await _dictation(sandbox, http)
        config = {
            "primaryLanguage": "en",
            "commands": [{"id": "next", "phrases": ["next section"]}],
        }
        await ws.send(json.dumps({"type": "config", "configuration": config}))
        accepted = json.loads(await ws.recv())
        assert accepted["type"] == "CONFIG_ACCEPTED"
        session_id = accepted["sessionId"]
        await ws.send(audio(2.5))
        await ws.send(json.dumps({"type": "end"}))
        messages = await _messages(ws)
        assert ws.close_code == 1000
        kinds = [m["type"] for m in messages]
        assert kinds == [
            "transcript",
            "command",
            "delta_usage",
            "transcript",
            "delta_usage",
            "transcript",
            "usage",
            "ended",
        ]
        assert messages[0]["data"]["isFinal"] is True
        assert messages[1]["data"]["id"] == "next"
        deltas = [m["credits"] for m in messages if m["type"] == "delta_usage"]
        assert deltas == [Decimal("0.015"), Decimal("0.030")]
        assert messages[-2]["credits"] == Decimal("0.045")  # 3 started seconds
        [billed] = await control.billed(kind="dictation")
        assert billed["id"] == session_id
        assert billed["interaction_id"] is None
        assert Decimal(str(billed["credits"])) == Decimal("0.045")

    async def test_refusals_carry_a_session_id_and_bill_nothing(
        self, sandbox: SandboxServer, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        firsts: list[tuple[str | bytes, str]] = [
            (
                json.dumps(
                    {"type": "config", "configuration": {"primaryLanguage": "xx"}}
                ),
                "CONFIG_DENIED",
            ),
            (audio(0.1), "CONFIG_MISSING"),
        ]
        for first, expected in firsts:
            ws = await _dictation(sandbox, http)
            await ws.send(first)
            [status] = await _messages(ws)
            assert status["type"] == expected
            assert status["sessionId"]
            assert ws.close_code == 1000
        assert await control.billed() == []

    async def test_socket_faults(
        self, sandbox: SandboxServer, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        config = json.dumps(
            {"type": "config", "configuration": {"primaryLanguage": "en"}}
        )
        await control.arm({"kind": "drop_stream"})
        ws = await _dictation(sandbox, http)
        await ws.send(config)
        await ws.recv()
        await ws.send(audio(1))
        await ws.send(json.dumps({"type": "end"}))
        kinds = [m["type"] for m in await _messages(ws)]
        assert "usage" not in kinds
        assert ws.close_code == 1011
        assert await control.billed() == []

        await control.arm({"kind": "late_delta_usage"})
        ws = await _dictation(sandbox, http)
        await ws.send(config)
        await ws.recv()
        await ws.send(audio(1))
        await ws.send(json.dumps({"type": "end"}))
        messages = await _messages(ws)
        assert [m["type"] for m in messages][-3:] == ["usage", "delta_usage", "ended"]
        assert messages[-2]["credits"] > messages[-3]["credits"]
        [billed] = await control.billed(kind="dictation")
        assert Decimal(str(billed["credits"])) == messages[-3]["credits"]
