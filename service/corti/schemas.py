"""Corti wire models (docs/corti-api.md), camelCase on the wire, snake_case in Python.

Responses are tolerant readers: unknown fields are ignored. Credits are
`Decimal`, parsed from the JSON text with `parse_float=Decimal` (see
`parse_json`), so `0.1` on the wire is exactly `Decimal("0.1")` here.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

EncounterStatus = Literal[
    "planned", "in-progress", "on-hold", "completed", "cancelled", "deleted"
]
EncounterType = Literal[
    "first_consultation", "consultation", "emergency", "inpatient", "outpatient"
]
ParticipantRole = Literal["doctor", "patient", "multiple"]
TranscriptStatusValue = Literal["completed", "processing", "failed"]


def parse_json(raw: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal."""
    return json.loads(raw, parse_float=Decimal)


class WireModel(BaseModel):
    """Base for Corti payloads: camelCase aliases, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready camelCase dict, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- OAuth -----------------------------------------------------------------


class TokenResponse(BaseModel):
    """Keycloak token answer (snake_case on the wire)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: SecretStr
    expires_in: int
    token_type: str = "Bearer"
    scope: str | None = None


# --- Interactions ----------------------------------------------------------


class EncounterPeriod(WireModel):
    """Start and optional end of an encounter."""

    started_at: datetime
    ended_at: datetime | None = None


class Encounter(WireModel):
    """The encounter block of an interaction."""

    identifier: str
    status: EncounterStatus | str
    type: EncounterType | str
    period: EncounterPeriod | None = None
    title: str | None = None


class Patient(WireModel):
    """The optional patient block of an interaction."""

    identifier: str
    name: str | None = None
    gender: str | None = None
    birth_date: datetime | None = None
    pronouns: str | None = None


class InteractionCreateRequest(WireModel):
    """Body of `POST /interactions/`."""

    assigned_user_id: str | None = None
    encounter: Encounter
    patient: Patient | None = None


class InteractionCreated(WireModel):
    """Answer to `POST /interactions/` (note `interactionId`, not `id`)."""

    interaction_id: str
    websocket_url: str


class Interaction(WireModel):
    """`GET /interactions/{id}` and list items."""

    id: str
    assigned_user_id: str | None = None
    encounter: Encounter
    patient: Patient | None = None
    ended_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    websocket_url: str | None = None


class InteractionList(WireModel):
    """`GET /interactions/` page."""

    interactions: list[Interaction]


class RecordingCreated(WireModel):
    """Answer to a recording upload."""

    recording_id: str


# --- Transcripts -----------------------------------------------------------


class UsageInfo(WireModel):
    """Credits reported by a billing endpoint."""

    credits_consumed: Decimal


class TranscriptParticipant(WireModel):
    """A channel's role in a transcript."""

    channel: int
    role: ParticipantRole | str


class TranscriptMetadata(WireModel):
    """Transcript metadata."""

    participants_roles: list[TranscriptParticipant] | None = None


class TranscriptSegment(WireModel):
    """One transcribed utterance; `start` and `end` are milliseconds."""

    channel: int
    participant: int
    speaker_id: int
    text: str
    start: int
    end: int


class Transcript(WireModel):
    """`TranscriptsResponse`: the result of creating or getting a transcript."""

    id: str
    metadata: TranscriptMetadata = Field(default_factory=TranscriptMetadata)
    transcripts: list[TranscriptSegment] | None = None
    usage_info: UsageInfo
    recording_id: str
    status: TranscriptStatusValue | str

    @property
    def credits(self) -> Decimal:
        """Credits Corti billed for this transcript."""
        return self.usage_info.credits_consumed


class TranscriptCreateRequest(WireModel):
    """Body of `POST /interactions/{id}/transcripts/`."""

    recording_id: str
    primary_language: str
    is_dictation: bool | None = None
    is_multichannel: bool | None = None
    diarize: bool | None = None
    participants: list[TranscriptParticipant] | None = None


class TranscriptData(WireModel):
    """Full transcript body inside a list item (with `full=true`)."""

    metadata: TranscriptMetadata = Field(default_factory=TranscriptMetadata)
    transcripts: list[TranscriptSegment] = Field(default_factory=list)


class TranscriptListItem(WireModel):
    """One entry of `GET /interactions/{id}/transcripts/`."""

    id: str
    transcript_sample: str = ""
    transcript: TranscriptData | None = None


class TranscriptList(WireModel):
    """`GET /interactions/{id}/transcripts/`; Corti may send `null`."""

    transcripts: list[TranscriptListItem] | None = None


class TranscriptStatus(WireModel):
    """`GET .../transcripts/{transcriptId}/status`."""

    status: TranscriptStatusValue | str


# --- Documents -------------------------------------------------------------


class StringContext(WireModel):
    """A document context given as free text."""

    type: Literal["string"] = "string"
    data: str


class TranscriptContextData(WireModel):
    """The transcript text of a `transcript` context."""

    text: str
    channel: int | None = None
    participant: int | None = None
    speaker_id: int | None = None
    start: int | None = None
    end: int | None = None


class TranscriptContext(WireModel):
    """A document context given as a transcript."""

    type: Literal["transcript"] = "transcript"
    data: TranscriptContextData


class FactInput(WireModel):
    """A fact used as document context."""

    text: str
    group: str | None = None
    source: Literal["core", "system", "user"] | None = None


class FactsContext(WireModel):
    """A document context given as facts."""

    type: Literal["facts"] = "facts"
    data: list[FactInput]


DocumentContext = StringContext | TranscriptContext | FactsContext


class DocumentCreateRequest(WireModel):
    """Body of `POST /interactions/{id}/documents/` (template-key form)."""

    context: list[DocumentContext]
    template_key: str
    output_language: str
    name: str | None = None
    disable_guardrails: bool | None = None
    documentation_mode: Literal["global_sequential", "routed_parallel"] | None = None


class DocumentSection(WireModel):
    """One generated section of a document."""

    key: str
    name: str
    text: str
    sort: int
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Document(WireModel):
    """`DocumentsGetResponse`: a generated document with its credits."""

    id: str
    name: str
    template_ref: str
    is_stream: bool = False
    sections: list[DocumentSection] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    output_language: str
    usage_info: UsageInfo

    @property
    def credits(self) -> Decimal:
        """Credits Corti billed for this document."""
        return self.usage_info.credits_consumed


class DocumentList(WireModel):
    """`GET /interactions/{id}/documents/`."""

    data: list[Document]


# --- /streams --------------------------------------------------------------


class StreamParticipant(WireModel):
    """The channel (and maybe role) of a live transcript segment."""

    channel: int
    role: str | None = None


class StreamTime(WireModel):
    """Start and end of a live segment, in seconds."""

    start: Decimal
    end: Decimal


class StreamTranscript(WireModel):
    """One live transcript segment from a `transcript` message."""

    id: str
    transcript: str
    final: bool
    speaker_id: int = -1
    participant: StreamParticipant
    time: StreamTime


class StreamFact(WireModel):
    """One fact from a `facts` message."""

    id: str
    text: str
    group: str
    group_id: str | None = None
    is_discarded: bool = False
    source: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
