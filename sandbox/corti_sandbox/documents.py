"""REST handlers for documents (billed by context size), and guided documents.

Guided documents (`POST /v2/documents/`, newer than SDK 1.0.0) take the body of
`POST .../documents/` plus an optional `interactionId`, and answer 201
`{document, usageInfo}`: the document (with `interactionId` when one was
named) and its credits beside it, billed like any document.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corti_sandbox._json import JSONResponse, corti_error
from corti_sandbox.oauth import Refusal, require_rest_auth, sandbox_state
from corti_sandbox.rest import bad_request, interaction_of, json_object, parse_uuid
from corti_sandbox.state import (
    DocumentRecord,
    InteractionRecord,
    SandboxState,
    document_credits,
    new_id,
    now_iso,
)


def _context_chars(context: Any) -> int:
    """Characters of text in a document context list (400 if malformed)."""
    if not isinstance(context, list) or not context:
        raise bad_request("context must be a non-empty list")
    chars = 0
    for item in context:
        kind = item.get("type") if isinstance(item, dict) else None
        data = item.get("data") if isinstance(item, dict) else None
        if kind == "string" and isinstance(data, str) and data.strip():
            chars += len(data)
        elif (
            kind == "transcript"
            and isinstance(data, dict)
            and isinstance(data.get("text"), str)
        ):
            chars += len(data["text"])
        elif kind == "facts" and isinstance(data, list) and data:
            if not all(
                isinstance(f, dict) and isinstance(f.get("text"), str) for f in data
            ):
                raise bad_request("Invalid context structure: facts need text")
            chars += sum(len(f["text"]) for f in data)
        else:
            raise bad_request(f"Invalid context structure: {kind!r}")
    if not chars:
        raise bad_request("Invalid context structure: no text")
    return chars


def _section_keys(body: dict[str, Any]) -> tuple[str, list[str]]:
    key = body.get("templateKey")
    if isinstance(key, str) and key:
        return key, ["summary"]
    template = body.get("template")
    if isinstance(template, dict):
        if isinstance(template.get("sectionKeys"), list) and template["sectionKeys"]:
            return "inline-template", [str(k) for k in template["sectionKeys"]]
        if isinstance(template.get("sections"), list) and template["sections"]:
            return "inline-template", [
                str(s.get("key")) for s in template["sections"] if isinstance(s, dict)
            ]
    raise bad_request("templateKey or template is required")


def _document_json(record: DocumentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "templateRef": record.template_ref,
        "isStream": False,
        "sections": record.sections,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "outputLanguage": record.output_language,
        "usageInfo": {"creditsConsumed": record.credits},
    }


def _new_document(
    state: SandboxState,
    body: dict[str, Any],
    tenant: str,
    interaction: InteractionRecord | None,
    *,
    guided: bool,
) -> DocumentRecord:
    chars = _context_chars(body.get("context"))
    template_ref, keys = _section_keys(body)
    language = body.get("outputLanguage")
    if not isinstance(language, str) or not language:
        raise bad_request("outputLanguage is required")
    if language not in state.config.languages:
        raise bad_request(f"Unsupported language: {language}")
    name = body.get("name")
    created_at = now_iso()
    return DocumentRecord(
        id=new_id(),
        interaction_id=interaction.id if interaction else None,
        name=name
        if isinstance(name, str) and name
        else f"Sandbox {template_ref} document",
        template_ref=template_ref,
        output_language=language,
        sections=[
            {
                "key": key,
                "name": key.replace("_", " ").title(),
                "text": f"Sandbox {key} written from {chars} characters of context.",
                "sort": index,
                "createdAt": created_at,
                "updatedAt": created_at,
            }
            for index, key in enumerate(keys)
        ],
        credits=document_credits(chars),
        created_at=created_at,
        updated_at=created_at,
        tenant=tenant,
        guided=guided,
    )


def _retention(
    request: Request, state: SandboxState, record: DocumentRecord
) -> dict[str, str]:
    if request.headers.get("X-Corti-Retention-Policy", "").lower() == "none":
        return {"X-Corti-Retention-Policy": "acknowledged"}
    state.documents[record.id] = record
    return {}


async def generate_document(request: Request) -> Response:
    """`POST .../documents/` -> 201 DocumentsGetResponse with its credits."""
    interaction = interaction_of(request)
    state = sandbox_state(request)
    body = await json_object(request)
    record = _new_document(state, body, interaction.tenant, interaction, guided=False)
    state.bill("document", record.id, interaction, record.credits)
    headers = _retention(request, state, record)
    return JSONResponse(_document_json(record), status_code=201, headers=headers)


async def create_guided_document(request: Request) -> Response:
    """`POST /v2/documents/` -> 201 `{document, usageInfo}` (guided documents)."""
    token = require_rest_auth(request)
    state = sandbox_state(request)
    body = await json_object(request)
    interaction: InteractionRecord | None = None
    if body.get("interactionId") is not None:
        interaction_id = parse_uuid(body["interactionId"], "interactionId")
        interaction = state.interactions.get(interaction_id)
        if interaction is None or interaction.tenant != token.tenant:
            raise Refusal(corti_error(404, f"Interaction {interaction_id} not found"))
    record = _new_document(state, body, token.tenant, interaction, guided=True)
    state.bill_stateless(
        "document",
        record.id,
        token.tenant,
        record.credits,
        interaction_id=record.interaction_id,
    )
    headers = _retention(request, state, record)
    document = _document_json(record)
    usage = document.pop("usageInfo")
    if record.interaction_id is not None:
        document["interactionId"] = record.interaction_id
    if not state.config.guided_document_ids:
        del document["id"]
    return JSONResponse(
        {"document": document, "usageInfo": usage}, status_code=201, headers=headers
    )


def _document(request: Request) -> DocumentRecord:
    interaction = interaction_of(request)
    document_id = request.path_params["document_id"]
    record = sandbox_state(request).documents.get(document_id)
    if record is None or record.interaction_id != interaction.id:
        raise Refusal(corti_error(404, f"Document {document_id} not found"))
    return record


async def list_documents(request: Request) -> Response:
    """`GET .../documents/` -> `{data: [DocumentsGetResponse]}`."""
    interaction = interaction_of(request)
    docs = [
        _document_json(d)
        for d in sandbox_state(request).documents.values()
        if d.interaction_id == interaction.id
    ]
    return JSONResponse({"data": docs})


async def get_document(request: Request) -> Response:
    """`GET .../documents/{documentId}`."""
    return JSONResponse(_document_json(_document(request)))


async def delete_document(request: Request) -> Response:
    """`DELETE .../documents/{documentId}` -> 204."""
    record = _document(request)
    del sandbox_state(request).documents[record.id]
    return Response(status_code=204)
