"""REST handlers under `/v2`: interactions, recordings, transcripts, documents."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.sandbox._json import JSONResponse, corti_error
from service.sandbox.oauth import Refusal, require_rest_auth, sandbox_state
from service.sandbox.state import (
    AUDIO_BYTES_PER_SECOND,
    DocumentRecord,
    InteractionRecord,
    RecordingRecord,
    TranscriptRecord,
    document_credits,
    new_id,
    now_iso,
    transcript_credits,
)

ENCOUNTER_STATUSES = {
    "planned",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
    "deleted",
}
ENCOUNTER_TYPES = {
    "first_consultation",
    "consultation",
    "emergency",
    "inpatient",
    "outpatient",
}
ROLES = {"doctor", "patient", "multiple"}
SORT_KEYS = {"id", "assignedUserId", "patient", "createdAt", "endedAt", "updatedAt"}
SEGMENT_SECONDS = 5


def bad_request(detail: str) -> Refusal:
    """A 400 refusal with Corti's error body."""
    return Refusal(corti_error(400, detail))


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 refusal."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise bad_request("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def _interaction(request: Request) -> InteractionRecord:
    token = require_rest_auth(request)
    interaction_id = request.path_params["interaction_id"]
    record = sandbox_state(request).interactions.get(interaction_id)
    if record is None or record.tenant != token.tenant:
        raise Refusal(corti_error(404, f"Interaction {interaction_id} not found"))
    return record


def _iso(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{field} must be an ISO-8601 date-time string")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{field} is not a valid ISO-8601 date-time") from None
    return value


def _uuid(value: Any, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise bad_request(f"{field} must be a UUID") from None


def _ws_url(request: Request, record: InteractionRecord) -> str:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return (
        f"{scheme}://{request.url.netloc}/audio-bridge/v2/interactions/{record.id}"
        f"/streams?tenant-name={record.tenant}"
    )


# --- interactions ----------------------------------------------------------


def _encounter(
    data: Any, created_at: str, *, partial: dict[str, Any] | None = None
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise bad_request("encounter must be an object")
    merged = {**(partial or {}), **data}
    identifier = merged.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise bad_request("encounter.identifier is required")
    if merged.get("status") not in ENCOUNTER_STATUSES:
        raise bad_request("encounter.status is invalid")
    if merged.get("type") not in ENCOUNTER_TYPES:
        raise bad_request("encounter.type is invalid")
    period_in = merged.get("period") or {"startedAt": created_at}
    if not isinstance(period_in, dict):
        raise bad_request("encounter.period must be an object")
    period = {
        "startedAt": _iso(period_in.get("startedAt", created_at), "period.startedAt")
    }
    if period_in.get("endedAt") is not None:
        period["endedAt"] = _iso(period_in["endedAt"], "period.endedAt")
    title = merged.get("title")
    if title is not None and not isinstance(title, str):
        raise bad_request("encounter.title must be a string")
    return {
        "identifier": identifier,
        "status": merged["status"],
        "type": merged["type"],
        "period": period,
        "title": title,
    }


def _patient(data: Any) -> dict[str, Any]:
    if data is None:
        return {"identifier": ""}
    if not isinstance(data, dict) or not isinstance(data.get("identifier"), str):
        raise bad_request("patient.identifier is required")
    patient: dict[str, Any] = {"identifier": data["identifier"]}
    for key in ("name", "pronouns"):
        if data.get(key) is not None:
            patient[key] = str(data[key])
    if data.get("gender") is not None:
        if data["gender"] not in {"male", "female", "unknown", "other"}:
            raise bad_request("patient.gender is invalid")
        patient["gender"] = data["gender"]
    if data.get("birthDate") is not None:
        patient["birthDate"] = _iso(data["birthDate"], "patient.birthDate")
    return patient


def _interaction_json(request: Request, record: InteractionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "assignedUserId": record.assigned_user_id,
        "encounter": record.encounter,
        "patient": record.patient,
        "endedAt": record.ended_at,
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "websocketUrl": _ws_url(request, record),
        "lastUpdated": record.updated_at,
    }


async def create_interaction(request: Request) -> Response:
    """`POST /v2/interactions/` -> 201 `{interactionId, websocketUrl}`."""
    token = require_rest_auth(request)
    body = await json_object(request)
    created_at = now_iso()
    assigned = body.get("assignedUserId")
    record = InteractionRecord(
        id=new_id(),
        tenant=token.tenant,
        assigned_user_id=_uuid(assigned, "assignedUserId") if assigned else new_id(),
        encounter=_encounter(body.get("encounter"), created_at),
        patient=_patient(body.get("patient")),
        created_at=created_at,
        updated_at=created_at,
    )
    sandbox_state(request).interactions[record.id] = record
    return JSONResponse(
        {"interactionId": record.id, "websocketUrl": _ws_url(request, record)},
        status_code=201,
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise bad_request(f"{name} must be between {low} and {high}")
    return value


async def list_interactions(request: Request) -> Response:
    """`GET /v2/interactions/`: page-numbered; past the end is an empty page."""
    token = require_rest_auth(request)
    sort = request.query_params.get("sort", "createdAt")
    direction = request.query_params.get("direction", "desc")
    if sort not in SORT_KEYS or direction not in {"asc", "desc"}:
        raise bad_request("sort or direction is invalid")
    page_size = _int_param(request, "pageSize", 10, 1, 1000)
    index = _int_param(request, "index", 1, 1, 1_000_000)
    statuses = set(request.query_params.getlist("encounterStatus"))
    patient = request.query_params.get("patient")
    rows = [
        _interaction_json(request, record)
        for record in sandbox_state(request).interactions.values()
        if record.tenant == token.tenant
        and (not statuses or record.encounter["status"] in statuses)
        and (patient is None or record.patient.get("identifier") == patient)
    ]

    def key(row: dict[str, Any]) -> str:
        value = row[sort]
        return str(value.get("identifier") if isinstance(value, dict) else value or "")

    rows.sort(key=key, reverse=direction == "desc")
    page = rows[(index - 1) * page_size : index * page_size]
    return JSONResponse({"interactions": page})


async def get_interaction(request: Request) -> Response:
    """`GET /v2/interactions/{id}`."""
    return JSONResponse(_interaction_json(request, _interaction(request)))


async def update_interaction(request: Request) -> Response:
    """`PATCH /v2/interactions/{id}`: every field optional."""
    record = _interaction(request)
    body = await json_object(request)
    if body.get("assignedUserId"):
        record.assigned_user_id = _uuid(body["assignedUserId"], "assignedUserId")
    if body.get("encounter") is not None:
        record.encounter = _encounter(
            body["encounter"], record.created_at, partial=record.encounter
        )
        if record.encounter["status"] == "completed" and record.ended_at is None:
            record.ended_at = now_iso()
    if body.get("patient") is not None:
        record.patient = _patient(body["patient"])
    record.updated_at = now_iso()
    return JSONResponse(_interaction_json(request, record))


async def delete_interaction(request: Request) -> Response:
    """`DELETE /v2/interactions/{id}` -> 204; its entities go too (not the ledger)."""
    record = _interaction(request)
    state = sandbox_state(request)
    del state.interactions[record.id]
    for table in (state.recordings, state.transcripts, state.documents):
        for key in [k for k, v in table.items() if v.interaction_id == record.id]:
            del table[key]
    return Response(status_code=204)


# --- recordings ------------------------------------------------------------


async def upload_recording(request: Request) -> Response:
    """`POST /v2/interactions/{id}/recordings/`: raw bytes -> 201 `{recordingId}`."""
    record = _interaction(request)
    state = sandbox_state(request)
    data = await request.body()
    if not data:
        raise bad_request("The recording is empty")
    if record.audio_bytes + len(data) > state.config.max_interaction_bytes:
        raise bad_request("Limit reached: an interaction holds at most 150 MB of audio")
    record.audio_bytes += len(data)
    recording = RecordingRecord(
        id=new_id(),
        interaction_id=record.id,
        data=data,
        content_type=request.headers.get("Content-Type", "application/octet-stream"),
    )
    state.recordings[recording.id] = recording
    return JSONResponse({"recordingId": recording.id}, status_code=201)


def _recording(
    request: Request, interaction: InteractionRecord, recording_id: Any
) -> RecordingRecord:
    recording = sandbox_state(request).recordings.get(str(recording_id))
    if recording is None or recording.interaction_id != interaction.id:
        raise Refusal(corti_error(404, f"Recording {recording_id} not found"))
    return recording


async def list_recordings(request: Request) -> Response:
    """`GET /v2/interactions/{id}/recordings/` -> `{recordings: [uuid]}`."""
    record = _interaction(request)
    ids = [
        r.id
        for r in sandbox_state(request).recordings.values()
        if r.interaction_id == record.id
    ]
    return JSONResponse({"recordings": ids})


async def get_recording(request: Request) -> Response:
    """`GET .../recordings/{recordingId}`: the audio bytes."""
    recording = _recording(
        request, _interaction(request), request.path_params["recording_id"]
    )
    return Response(recording.data, media_type=recording.content_type)


async def delete_recording(request: Request) -> Response:
    """`DELETE .../recordings/{recordingId}` -> 204."""
    recording = _recording(
        request, _interaction(request), request.path_params["recording_id"]
    )
    del sandbox_state(request).recordings[recording.id]
    return Response(status_code=204)


# --- transcripts -----------------------------------------------------------


def _segments(n_bytes: int) -> list[dict[str, Any]]:
    duration_ms = n_bytes * 1000 // AUDIO_BYTES_PER_SECOND
    step = SEGMENT_SECONDS * 1000
    return [
        {
            "channel": 0,
            "participant": 0,
            "speakerId": -1,
            "text": f"Sandbox transcript segment {index + 1}.",
            "start": start,
            "end": min(start + step, duration_ms),
        }
        for index, start in enumerate(range(0, max(duration_ms, 1), step))
    ]


def _transcript_json(record: TranscriptRecord) -> dict[str, Any]:
    status = record.status()
    done = status == "completed"
    return {
        "id": record.id,
        "metadata": {"participantsRoles": record.participants_roles},
        "transcripts": record.segments if done else None,
        # Credits are reported once processing is done; they are billed at once.
        "usageInfo": {"creditsConsumed": record.credits if done else 0},
        "recordingId": record.recording_id,
        "status": status,
    }


def _participants(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request("participants must be a list")
    result = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("channel"), int)
            or item.get("role") not in ROLES
        ):
            raise bad_request("participants items need an integer channel and a role")
        result.append({"channel": item["channel"], "role": item["role"]})
    return result


async def create_transcript(request: Request) -> Response:
    """`POST .../transcripts/` -> 201 TranscriptsResponse, or 202 while processing."""
    interaction = _interaction(request)
    state = sandbox_state(request)
    body = await json_object(request)
    if not body.get("recordingId"):
        raise bad_request("recordingId is required")
    recording = _recording(
        request, interaction, _uuid(body["recordingId"], "recordingId")
    )
    language = body.get("primaryLanguage")
    if not isinstance(language, str) or not language:
        raise bad_request("primaryLanguage is required")
    if language not in state.config.languages:
        raise bad_request(f"Unsupported language: {language}")
    size = len(recording.data)
    processing = size > state.config.processing_threshold_bytes
    delay = state.config.processing_seconds if processing else 0.0
    record = TranscriptRecord(
        id=new_id(),
        interaction_id=interaction.id,
        recording_id=recording.id,
        segments=_segments(size),
        participants_roles=_participants(body.get("participants")),
        credits=transcript_credits(size),
        ready_at=time.monotonic() + delay,
    )
    state.transcripts[record.id] = record
    state.bill("transcript", record.id, interaction, record.credits)
    if processing:
        location = f"{request.url.scheme}://{request.url.netloc}/v2/interactions/{interaction.id}/transcripts/{record.id}"
        return JSONResponse(
            _transcript_json(record), status_code=202, headers={"Location": location}
        )
    return JSONResponse(_transcript_json(record), status_code=201)


def _transcript(request: Request) -> TranscriptRecord:
    interaction = _interaction(request)
    transcript_id = request.path_params["transcript_id"]
    record = sandbox_state(request).transcripts.get(transcript_id)
    if record is None or record.interaction_id != interaction.id:
        raise Refusal(corti_error(404, f"Transcript {transcript_id} not found"))
    return record


async def list_transcripts(request: Request) -> Response:
    """`GET .../transcripts/?full=bool` -> `{transcripts: [...] | null}`."""
    interaction = _interaction(request)
    full = request.query_params.get("full", "false").lower() == "true"
    items = []
    for record in sandbox_state(request).transcripts.values():
        if record.interaction_id != interaction.id:
            continue
        data = _transcript_json(record)
        text = " ".join(s["text"] for s in data["transcripts"] or [])
        item: dict[str, Any] = {"id": record.id, "transcriptSample": text[:100]}
        if full and data["transcripts"] is not None:
            item["transcript"] = {
                "metadata": data["metadata"],
                "transcripts": data["transcripts"],
            }
        items.append(item)
    return JSONResponse({"transcripts": items or None})


async def get_transcript(request: Request) -> Response:
    """`GET .../transcripts/{transcriptId}`."""
    return JSONResponse(_transcript_json(_transcript(request)))


async def transcript_status(request: Request) -> Response:
    """`GET .../transcripts/{transcriptId}/status` -> `{status}`."""
    return JSONResponse({"status": _transcript(request).status()})


async def delete_transcript(request: Request) -> Response:
    """`DELETE .../transcripts/{transcriptId}` -> 204."""
    record = _transcript(request)
    del sandbox_state(request).transcripts[record.id]
    return Response(status_code=204)


# --- documents -------------------------------------------------------------


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


async def generate_document(request: Request) -> Response:
    """`POST .../documents/` -> 201 DocumentsGetResponse with its credits."""
    interaction = _interaction(request)
    state = sandbox_state(request)
    body = await json_object(request)
    chars = _context_chars(body.get("context"))
    template_ref, keys = _section_keys(body)
    language = body.get("outputLanguage")
    if not isinstance(language, str) or not language:
        raise bad_request("outputLanguage is required")
    if language not in state.config.languages:
        raise bad_request(f"Unsupported language: {language}")
    name = body.get("name")
    created_at = now_iso()
    record = DocumentRecord(
        id=new_id(),
        interaction_id=interaction.id,
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
    )
    state.bill("document", record.id, interaction, record.credits)
    headers = {}
    if request.headers.get("X-Corti-Retention-Policy", "").lower() == "none":
        headers["X-Corti-Retention-Policy"] = "acknowledged"
    else:
        state.documents[record.id] = record
    return JSONResponse(_document_json(record), status_code=201, headers=headers)


def _document(request: Request) -> DocumentRecord:
    interaction = _interaction(request)
    document_id = request.path_params["document_id"]
    record = sandbox_state(request).documents.get(document_id)
    if record is None or record.interaction_id != interaction.id:
        raise Refusal(corti_error(404, f"Document {document_id} not found"))
    return record


async def list_documents(request: Request) -> Response:
    """`GET .../documents/` -> `{data: [DocumentsGetResponse]}`."""
    interaction = _interaction(request)
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
