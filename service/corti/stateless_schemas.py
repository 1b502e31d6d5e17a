"""Wire models of Corti's stateless calls and guided documents (docs/corti-api.md
sections 7-9 and 13; SDK 1.0.0 names). None of them names an interaction or
returns an id for the call, except a guided document's own id."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from service.corti.schemas import (
    DocumentContext,
    DocumentSection,
    UsageInfo,
    WireModel,
)


class TextContext(WireModel):
    """`{type: "text", text}` (CommonTextContext)."""

    type: Literal["text"] = "text"
    text: str


class DocumentIdContext(WireModel):
    """`{type: "documentId", documentId}` (CommonDocumentIdContext)."""

    type: Literal["documentId"] = "documentId"
    document_id: str


class FactsExtractRequest(WireModel):
    """Body of `POST /tools/extract-facts`."""

    context: list[TextContext]
    output_language: str


class ExtractedFact(WireModel):
    """One fact of `FactsExtractResponse`."""

    group: str
    text: str
    value: str | None = None


class FactsExtracted(WireModel):
    """`FactsExtractResponse`: the facts and the call's credits."""

    facts: list[ExtractedFact] = Field(default_factory=list)
    output_language: str | None = None
    usage_info: UsageInfo

    @property
    def credits(self) -> Decimal:
        """Credits Corti billed for this call."""
        return self.usage_info.credits_consumed


class CodesFilter(WireModel):
    """`filter` of a coding request."""

    include: list[str] | None = None
    exclude: list[str] | None = None
    expand: bool | None = None


class CodingRequest(WireModel):
    """Body of `POST /tools/coding/` (`maxCandidates` is newer than SDK 1.0.0)."""

    system: list[str]
    context: list[TextContext | DocumentIdContext]
    filter: CodesFilter | None = None
    max_candidates: int | None = None


class Code(WireModel):
    """One predicted code or candidate."""

    system: str
    code: str
    display: str


class CodesPredicted(WireModel):
    """`CodesGeneralResponse`: codes, candidates and the call's credits."""

    codes: list[Code] = Field(default_factory=list)
    candidates: list[Code] = Field(default_factory=list)
    usage_info: UsageInfo

    @property
    def credits(self) -> Decimal:
        """Credits Corti billed for this call."""
        return self.usage_info.credits_consumed


class GuidedDocumentRequest(WireModel):
    """Body of guided `POST /documents/` (assumed: the interaction form's body
    plus an optional `interactionId`; see docs/corti-api.md, In this repository)."""

    context: list[DocumentContext]
    template_key: str
    output_language: str
    name: str | None = None
    interaction_id: str | None = None


class GuidedDocumentBody(WireModel):
    """The `document` of a guided answer; every field but the id is optional."""

    id: str | None = None
    name: str | None = None
    interaction_id: str | None = None
    sections: list[DocumentSection] = Field(default_factory=list)
    created_at: datetime | None = None


class GuidedDocument(WireModel):
    """Guided `POST /documents/` answer: `{document, usageInfo}`."""

    document: GuidedDocumentBody = Field(default_factory=GuidedDocumentBody)
    usage_info: UsageInfo

    @property
    def credits(self) -> Decimal:
        """Credits Corti billed for this document."""
        return self.usage_info.credits_consumed


class DictationCommand(WireModel):
    """A command to detect while dictating (TranscribeCommand)."""

    id: str
    phrases: list[str]


class DictationConfig(WireModel):
    """The `configuration` of `/transcribe` (TranscribeConfig)."""

    primary_language: str = "en"
    interim_results: bool | None = None
    spoken_punctuation: bool | None = None
    automatic_punctuation: bool | None = None
    commands: list[DictationCommand] | None = None

    def message(self) -> dict[str, Any]:
        """The `{"type": "config", "configuration": ...}` message."""
        return {"type": "config", "configuration": self.to_wire()}


class DictationTranscript(WireModel):
    """`data` of a `/transcribe` `transcript` message (an object; seconds)."""

    text: str
    raw_transcript_text: str | None = None
    start: Decimal
    end: Decimal
    is_final: bool = True


class DictationCommandHit(WireModel):
    """`data` of a `/transcribe` `command` message."""

    id: str
    variables: dict[str, str | None] | None = None
    raw_transcript_text: str | None = None
    start: Decimal | None = None
    end: Decimal | None = None
