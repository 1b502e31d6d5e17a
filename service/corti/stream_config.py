"""What a `/streams` session is given and what it returns (SDK 1.0.0 names)."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from service.corti.schemas import StreamFact, StreamTranscript

AudioSource = bytes | AsyncIterable[bytes]

# About 250 ms of 16 kHz 16-bit mono audio per binary frame.
DEFAULT_CHUNK_BYTES = 8000


@dataclass(frozen=True, slots=True)
class StreamParticipantConfig:
    """A channel and its role for the stream config."""

    channel: int = 0
    role: Literal["doctor", "patient", "multiple"] = "multiple"


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """The `configuration` sent first on `/streams` (SDK 1.0.0 field names)."""

    primary_language: str = "en"
    mode: Literal["facts", "transcription"] = "facts"
    output_locale: str | None = None
    participants: tuple[StreamParticipantConfig, ...] = (StreamParticipantConfig(),)
    is_diarization: bool = False
    is_multichannel: bool = False
    retention_policy: Literal["retain", "none"] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The `{"type": "config", "configuration": ...}` message."""
        mode: dict[str, Any] = {"type": self.mode}
        if self.output_locale:
            mode["outputLocale"] = self.output_locale
        configuration: dict[str, Any] = {
            "transcription": {
                "primaryLanguage": self.primary_language,
                "isDiarization": self.is_diarization,
                "isMultichannel": self.is_multichannel,
                "participants": [
                    {"channel": p.channel, "role": p.role} for p in self.participants
                ],
            },
            "mode": mode,
        }
        if self.retention_policy:
            configuration["X-Corti-Retention-Policy"] = self.retention_policy
        return {"type": "config", "configuration": configuration}


@dataclass(frozen=True, slots=True)
class StreamTimeouts:
    """Seconds allowed for each wait of a stream session."""

    open: float = 10.0
    config: float = 15.0
    send: float = 30.0
    end: float = 120.0
    close: float = 5.0


@dataclass(slots=True)
class StreamResult:
    """What a finished stream reported; `credits` is the final `usage`."""

    credits: Decimal
    last_delta: Decimal | None = None
    late_deltas: int = 0
    transcripts: list[StreamTranscript] = field(default_factory=list)
    facts: list[StreamFact] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False
