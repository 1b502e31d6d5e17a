"""REST handlers for transcripts (billed at creation; may answer `processing`)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from corti_sandbox._json import JSONResponse, corti_error
from corti_sandbox.oauth import Refusal, sandbox_state
from corti_sandbox.rest import (
    bad_request,
    interaction_of,
    json_object,
    parse_uuid,
    recording_of,
)
from corti_sandbox.state import (
    AUDIO_BYTES_PER_SECOND,
    TranscriptRecord,
    new_id,
    transcript_credits,
)

ROLES = {"doctor", "patient", "multiple"}
SEGMENT_SECONDS = 5


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
    interaction = interaction_of(request)
    state = sandbox_state(request)
    body = await json_object(request)
    if not body.get("recordingId"):
        raise bad_request("recordingId is required")
    recording = recording_of(
        request, interaction, parse_uuid(body["recordingId"], "recordingId")
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
    interaction = interaction_of(request)
    transcript_id = request.path_params["transcript_id"]
    record = sandbox_state(request).transcripts.get(transcript_id)
    if record is None or record.interaction_id != interaction.id:
        raise Refusal(corti_error(404, f"Transcript {transcript_id} not found"))
    return record


async def list_transcripts(request: Request) -> Response:
    """`GET .../transcripts/?full=bool` -> `{transcripts: [...] | null}`."""
    interaction = interaction_of(request)
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
