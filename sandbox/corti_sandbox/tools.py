"""Stateless REST tools: `POST /v2/tools/extract-facts` and `POST /v2/tools/coding/`.

Neither names an interaction nor returns an id of its own (SDK 1.0.0:
`FactsExtractResponse`, `CodesGeneralResponse`), so each call is billed to the
token's tenant under a fresh sandbox id. Credits (deterministic):

- extract-facts: 0.05 plus 0.01 per started 100 characters of context text;
- coding: 0.10 per coding system plus 0.01 per started 100 characters of
  context, where a `documentId` context counts the document's section text
  (a document of another tenant, or none, is a 404).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corti_sandbox._json import JSONResponse, corti_error
from corti_sandbox.oauth import Refusal, require_rest_auth, sandbox_state
from corti_sandbox.rest import bad_request, json_object
from corti_sandbox.state import (
    SandboxState,
    coding_credits,
    facts_credits,
    new_id,
)

CODING_SYSTEMS = frozenset(
    {
        "icd10cm-inpatient",
        "icd10cm-outpatient",
        "icd10pcs",
        "cpt",
        "icd10int-inpatient",
        "icd10int-outpatient",
        "icd10uk-inpatient",
        "icd10uk-outpatient",
    }
)


def _texts(context: Any) -> list[str]:
    """The texts of a `[{type: "text", text}]` context list (400 if malformed)."""
    if not isinstance(context, list) or not context:
        raise bad_request("context must be a non-empty list")
    texts = []
    for item in context:
        if (
            not isinstance(item, dict)
            or item.get("type") != "text"
            or not isinstance(item.get("text"), str)
            or not item["text"].strip()
        ):
            raise bad_request("Invalid context structure: expected {type: text, text}")
        texts.append(item["text"])
    return texts


async def extract_facts(request: Request) -> Response:
    """`POST /v2/tools/extract-facts` -> 200 `{facts, outputLanguage, usageInfo}`."""
    token = require_rest_auth(request)
    state = sandbox_state(request)
    body = await json_object(request)
    texts = _texts(body.get("context"))
    language = body.get("outputLanguage")
    if not isinstance(language, str) or not language:
        raise bad_request("outputLanguage is required")
    if language not in state.config.languages:
        raise bad_request(f"Unsupported language: {language}")
    credits = facts_credits(sum(len(t) for t in texts))
    state.bill_stateless("facts", new_id(), token.tenant, credits)
    facts = [
        {
            "group": "other",
            "value": f"Sandbox fact from context {index}.",
            "text": f"Sandbox fact from context {index}.",
        }
        for index, _ in enumerate(texts)
    ]
    return JSONResponse(
        {
            "facts": facts,
            "outputLanguage": language,
            "usageInfo": {"creditsConsumed": credits},
        }
    )


def _coding_chars(state: SandboxState, tenant: str, context: Any) -> int:
    if not isinstance(context, list) or not context:
        raise bad_request("context must be a non-empty list")
    chars = 0
    for item in context:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str) and item["text"]:
            chars += len(item["text"])
        elif kind == "documentId" and isinstance(item.get("documentId"), str):
            document = state.documents.get(item["documentId"])
            if document is None or document.tenant != tenant:
                raise Refusal(
                    corti_error(404, f"Document {item['documentId']} not found")
                )
            chars += sum(len(str(s.get("text", ""))) for s in document.sections)
        else:
            raise bad_request(f"Invalid context structure: {kind!r}")
    return chars


async def predict_codes(request: Request) -> Response:
    """`POST /v2/tools/coding/` -> 200 `{codes, candidates, usageInfo}`."""
    token = require_rest_auth(request)
    state = sandbox_state(request)
    body = await json_object(request)
    systems = body.get("system")
    if (
        not isinstance(systems, list)
        or not systems
        or not all(isinstance(s, str) and s in CODING_SYSTEMS for s in systems)
    ):
        raise bad_request(
            f"system must be a non-empty list of {', '.join(sorted(CODING_SYSTEMS))}"
        )
    chars = _coding_chars(state, token.tenant, body.get("context"))
    limit = body.get("maxCandidates")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
    ):
        raise bad_request("maxCandidates must be a non-negative integer")
    credits = coding_credits(len(systems), chars)
    state.bill_stateless("coding", new_id(), token.tenant, credits)
    codes = [
        {
            "system": system,
            "code": f"S{index:02d}",
            "display": f"Sandbox code {index} of {system}",
            "evidences": [],
            "alternatives": [],
        }
        for index, system in enumerate(systems)
    ]
    candidates = [
        {"system": systems[0], "code": f"C{index:02d}", "display": "Sandbox candidate"}
        for index in range(2 if limit is None else min(2, limit))
    ]
    return JSONResponse(
        {
            "codes": codes,
            "candidates": candidates,
            "usageInfo": {"creditsConsumed": credits},
        }
    )
