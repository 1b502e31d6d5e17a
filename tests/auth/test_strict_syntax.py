"""Strict credit and id syntax (issue #10 item 12): coded errors, nothing stored."""

from __future__ import annotations

import json

import httpx
import pytest

from service.db.session import Database
from tests.auth.helpers import call, codes, new_key

pytestmark = pytest.mark.asyncio

STREAM = """
mutation($i: ID!, $x: ID!, $c: Decimal!) {
  recordStreamUsage(input: {interactionId: $i, streamId: $x, credits: $c}) { id }
}"""

BAD_CREDITS = [
    "1e999999999",
    "1e-999999999",
    "1_000",
    "\u0661\u0660",
    "1e5_0",
    "0x10",
    " 1 2",
]


async def _raw(api: httpx.AsyncClient, key: str, body: str) -> dict[str, object]:
    response = await api.post(
        "/graphql",
        content=body.encode(),
        headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    result: dict[str, object] = response.json()
    return result


@pytest.mark.parametrize("credits", BAD_CREDITS)
async def test_credits_text_must_be_plain_ascii_decimals(
    db: Database, api: httpx.AsyncClient, credits: str
) -> None:
    _, key = await new_key(db, "admin")
    body = await call(api, STREAM, {"i": "int-x", "x": "s-1", "c": credits}, key=key)
    assert codes(body) == ["BAD_USER_INPUT"], body


@pytest.mark.parametrize(
    "number", ["1e999999999", "1e-999999999", "1" + "0" * 40, "-1"]
)
async def test_credits_as_json_numbers_are_judged_exactly(
    db: Database, api: httpx.AsyncClient, number: str
) -> None:
    _, key = await new_key(db, "admin")
    raw = (
        '{"query": '
        + json.dumps(STREAM)
        + ', "variables": {"i": "int-x", "x": "s-1", "c": '
        + number
        + "}}"
    )
    body = await _raw(api, key, raw)
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert "credits" in json.dumps(body)


@pytest.mark.parametrize(
    "escaped",
    [
        "int\\ud800x",
        "int\\u200bx",
        "int\\u202ex",
        "int\\ue000x",
        "int\\u2028x",
        "int\\u0000x",
    ],
)
async def test_ids_refuse_invisible_characters(
    db: Database, api: httpx.AsyncClient, escaped: str
) -> None:
    _, key = await new_key(db, "admin")
    raw = (
        '{"query": '
        + json.dumps(STREAM)
        + ', "variables": {"i": "'
        + escaped
        + '", "x": "s-1", "c": "1"}}'
    )
    body = await _raw(api, key, raw)
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert "interactionId" in json.dumps(body), body
