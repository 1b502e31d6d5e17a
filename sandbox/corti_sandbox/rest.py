"""REST handlers under `/v2`: shared helpers, interactions and recordings."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corti_sandbox._json import JSONResponse, corti_error
from corti_sandbox.oauth import Refusal, require_rest_auth, sandbox_state
from corti_sandbox.state import (
    InteractionRecord,
    RecordingRecord,
    new_id,
    now_iso,
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
SORT_KEYS = {"id", "assignedUserId", "patient", "createdAt", "endedAt", "updatedAt"}


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


def interaction_of(request: Request) -> InteractionRecord:
    """The path's interaction, for the caller's tenant, or a 404 refusal."""
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


def parse_uuid(value: Any, field: str) -> str:
    """A canonical UUID string, or a 400 refusal."""
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
        assigned_user_id=parse_uuid(assigned, "assignedUserId")
        if assigned
        else new_id(),
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
    return JSONResponse(_interaction_json(request, interaction_of(request)))


async def update_interaction(request: Request) -> Response:
    """`PATCH /v2/interactions/{id}`: every field optional."""
    record = interaction_of(request)
    body = await json_object(request)
    if body.get("assignedUserId"):
        record.assigned_user_id = parse_uuid(body["assignedUserId"], "assignedUserId")
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
    record = interaction_of(request)
    state = sandbox_state(request)
    del state.interactions[record.id]
    for table in (state.recordings, state.transcripts, state.documents):
        for key in [k for k, v in table.items() if v.interaction_id == record.id]:
            del table[key]
    return Response(status_code=204)


# --- recordings ------------------------------------------------------------


async def upload_recording(request: Request) -> Response:
    """`POST /v2/interactions/{id}/recordings/`: raw bytes -> 201 `{recordingId}`."""
    record = interaction_of(request)
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


def recording_of(
    request: Request, interaction: InteractionRecord, recording_id: Any
) -> RecordingRecord:
    """A recording of the interaction, or a 404 refusal."""
    recording = sandbox_state(request).recordings.get(str(recording_id))
    if recording is None or recording.interaction_id != interaction.id:
        raise Refusal(corti_error(404, f"Recording {recording_id} not found"))
    return recording


async def list_recordings(request: Request) -> Response:
    """`GET /v2/interactions/{id}/recordings/` -> `{recordings: [uuid]}`."""
    record = interaction_of(request)
    ids = [
        r.id
        for r in sandbox_state(request).recordings.values()
        if r.interaction_id == record.id
    ]
    return JSONResponse({"recordings": ids})


async def get_recording(request: Request) -> Response:
    """`GET .../recordings/{recordingId}`: the audio bytes."""
    recording = recording_of(
        request, interaction_of(request), request.path_params["recording_id"]
    )
    return Response(recording.data, media_type=recording.content_type)


async def delete_recording(request: Request) -> Response:
    """`DELETE .../recordings/{recordingId}` -> 204."""
    recording = recording_of(
        request, interaction_of(request), request.path_params["recording_id"]
    )
    del sandbox_state(request).recordings[recording.id]
    return Response(status_code=204)
