"""The sandbox's in-memory world: settings, tokens, entities, billing ledger.

Everything runs on the server's single event loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from corti_sandbox.faults import Fault

# 16 kHz, 16-bit mono PCM: the sandbox cannot decode audio, so it treats every
# byte stream as this format to turn a byte length into seconds.
AUDIO_BYTES_PER_SECOND = 32_000
TRANSCRIPT_CREDITS_PER_SECOND = Decimal("0.01")
STREAM_CREDITS_PER_SECOND = Decimal("0.02")
DOCUMENT_BASE_CREDITS = Decimal("0.10")
DOCUMENT_CREDITS_PER_100_CHARS = Decimal("0.01")
FACTS_BASE_CREDITS = Decimal("0.05")
CODING_CREDITS_PER_SYSTEM = Decimal("0.10")
TEXT_CREDITS_PER_100_CHARS = Decimal("0.01")
DICTATION_CREDITS_PER_SECOND = Decimal("0.015")

DEFAULT_LANGUAGES = frozenset(
    {"en", "en-US", "en-GB", "da", "de", "fr", "sv", "no", "nl", "es", "it", "pt"}
)


def audio_seconds(n_bytes: int) -> int:
    """Started seconds of audio in `n_bytes` bytes."""
    return math.ceil(n_bytes / AUDIO_BYTES_PER_SECOND)


def transcript_credits(n_bytes: int) -> Decimal:
    """0.01 credits per started second of the recording."""
    return TRANSCRIPT_CREDITS_PER_SECOND * audio_seconds(n_bytes)


def stream_credits(n_bytes: int) -> Decimal:
    """0.02 credits per started second of audio received on the stream."""
    return STREAM_CREDITS_PER_SECOND * audio_seconds(n_bytes)


def document_credits(context_chars: int) -> Decimal:
    """0.10 credits plus 0.01 per started 100 characters of context text."""
    return DOCUMENT_BASE_CREDITS + DOCUMENT_CREDITS_PER_100_CHARS * math.ceil(
        context_chars / 100
    )


def facts_credits(context_chars: int) -> Decimal:
    """0.05 credits plus 0.01 per started 100 characters of context text."""
    return FACTS_BASE_CREDITS + TEXT_CREDITS_PER_100_CHARS * math.ceil(
        context_chars / 100
    )


def coding_credits(systems: int, context_chars: int) -> Decimal:
    """0.10 credits per coding system plus 0.01 per started 100 characters."""
    return CODING_CREDITS_PER_SYSTEM * systems + TEXT_CREDITS_PER_100_CHARS * (
        math.ceil(context_chars / 100)
    )


def dictation_credits(n_bytes: int) -> Decimal:
    """0.015 credits per started second of audio received on /transcribe."""
    return DICTATION_CREDITS_PER_SECOND * audio_seconds(n_bytes)


def now_iso() -> str:
    """The current UTC time as Corti writes it, e.g. 2024-02-28T12:34:56.789Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """A fresh UUID string, like Corti's ids."""
    return str(uuid.uuid4())


@dataclass
class SandboxConfig:
    """Behaviour knobs; all can be changed at runtime via /_sandbox/config."""

    client_id: str | None = None
    client_secret: str | None = None
    token_expires_in: int = 300
    processing_threshold_bytes: int = 120 * AUDIO_BYTES_PER_SECOND
    processing_seconds: float = 2.0
    config_timeout: float = 10.0
    facts_key: Literal["fact", "data"] = "fact"
    delta_usage: bool = True
    # Guided documents' answers name their document id (False: no id, to
    # exercise a client's fallback key).
    guided_document_ids: bool = True
    languages: frozenset[str] = DEFAULT_LANGUAGES
    max_interaction_bytes: int = 150 * 1024 * 1024

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON, without the client secret."""
        data = asdict(self)
        data["languages"] = sorted(self.languages)
        data["client_secret"] = "**********" if self.client_secret else None
        return data

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with `changes` applied; unknown keys raise ValueError."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "languages" in changes:
            changes = {**changes, "languages": frozenset(changes["languages"])}
        return replace(self, **changes)


@dataclass
class TokenRecord:
    """An issued access token."""

    tenant: str
    client_id: str
    expires_at: float


@dataclass
class InteractionRecord:
    """A stored interaction."""

    id: str
    tenant: str
    assigned_user_id: str
    encounter: dict[str, Any]
    patient: dict[str, Any]
    created_at: str
    updated_at: str
    ended_at: str | None = None
    audio_bytes: int = 0


@dataclass
class RecordingRecord:
    """An uploaded recording."""

    id: str
    interaction_id: str
    data: bytes
    content_type: str


@dataclass
class TranscriptRecord:
    """A transcript; `ready_at` (monotonic) is when processing completes."""

    id: str
    interaction_id: str
    recording_id: str
    segments: list[dict[str, Any]]
    participants_roles: list[dict[str, Any]] | None
    credits: Decimal
    ready_at: float

    def status(self) -> str:
        """completed or processing."""
        return "completed" if time.monotonic() >= self.ready_at else "processing"


@dataclass
class DocumentRecord:
    """A generated document (a guided one may have no interaction)."""

    id: str
    interaction_id: str | None
    name: str
    template_ref: str
    output_language: str
    sections: list[dict[str, Any]]
    credits: Decimal
    created_at: str
    updated_at: str
    tenant: str = ""
    guided: bool = False


BilledKind = Literal["transcript", "document", "stream", "facts", "coding", "dictation"]


@dataclass
class Billed:
    """One billed entity in the ledger (stateless calls have no interaction)."""

    kind: BilledKind
    id: str
    interaction_id: str | None
    tenant: str
    credits: Decimal
    at: str = field(default_factory=now_iso)

    def to_json(self) -> dict[str, Any]:
        """The ledger entry as JSON (credits as an exact number)."""
        return asdict(self)


@dataclass
class RequestLog:
    """One handled HTTP request (no headers, so no secrets)."""

    method: str
    path: str
    status: int


class SandboxState:
    """All mutable sandbox data, reset by POST /_sandbox/reset."""

    def __init__(self, config: SandboxConfig) -> None:
        self.initial_config = config
        self.config = config
        self._signing_key = secrets.token_bytes(32)
        self.tokens: dict[str, TokenRecord] = {}
        self.in_flight = 0  # HTTP calls and stream sessions being handled
        self.reset()

    async def settle(self, within: float = 5.0) -> bool:
        """Wait until no call is being handled (e.g. a delayed answer)."""
        deadline = time.monotonic() + within
        while self.in_flight > 0:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def reset(self) -> None:
        """Forget entities, ledger, faults and counters; restore the settings.

        Issued tokens stay valid so that long-lived test clients keep working.
        """
        self.config = self.initial_config
        self.interactions: dict[str, InteractionRecord] = {}
        self.recordings: dict[str, RecordingRecord] = {}
        self.transcripts: dict[str, TranscriptRecord] = {}
        self.documents: dict[str, DocumentRecord] = {}
        self.ledger: list[Billed] = []
        self.faults: list[Fault] = []
        self.tokens_issued = 0
        self.streams_opened = 0
        self.dictations_opened = 0
        self.requests: deque[RequestLog] = deque(maxlen=10_000)

    # --- tokens ----------------------------------------------------------

    def issue_token(self, tenant: str, client_id: str, issuer: str) -> str:
        """Mint a JWT-shaped access token and remember it."""
        now = int(time.time())
        expires_in = self.config.token_expires_in
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "iss": issuer,
            "azp": client_id,
            "iat": now,
            "exp": now + expires_in,
            "jti": new_id(),
            "scope": "openid",
        }
        signing_input = f"{_b64(header)}.{_b64(payload)}"
        signature = hmac.new(
            self._signing_key, signing_input.encode(), hashlib.sha256
        ).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
        self.tokens[token] = TokenRecord(
            tenant, client_id, time.monotonic() + expires_in
        )
        self.tokens_issued += 1
        return token

    def check_token(self, token: str) -> TokenRecord | None:
        """The token's record if it is known and not expired."""
        record = self.tokens.get(token)
        if record is None:
            return None
        if record.expires_at <= time.monotonic():
            del self.tokens[token]
            return None
        return record

    def revoke_tokens(self) -> int:
        """Invalidate every issued token; returns how many there were."""
        count = len(self.tokens)
        self.tokens.clear()
        return count

    def log_request(self, method: str, path: str, status: int) -> None:
        """Remember a handled request (status 0: the answer was dropped)."""
        self.requests.append(RequestLog(method, path, status))

    # --- billing ---------------------------------------------------------

    def bill(
        self,
        kind: BilledKind,
        entity_id: str,
        interaction: InteractionRecord,
        credits: Decimal,
    ) -> None:
        """Add one entity to the ledger."""
        self.ledger.append(
            Billed(kind, entity_id, interaction.id, interaction.tenant, credits)
        )

    def bill_stateless(
        self,
        kind: BilledKind,
        entity_id: str,
        tenant: str,
        credits: Decimal,
        interaction_id: str | None = None,
    ) -> None:
        """Add a call that is not billed to an interaction (or names one itself)."""
        self.ledger.append(Billed(kind, entity_id, interaction_id, tenant, credits))

    # --- faults ----------------------------------------------------------

    def take_fault(self, kinds: set[str], method: str, path: str) -> Fault | None:
        """The first armed fault of `kinds` matching the request, consumed once."""
        for fault in self.faults:
            if (
                fault.kind in kinds
                and fault.remaining > 0
                and fault.matches(method, path)
            ):
                fault.remaining -= 1
                return fault
        return None


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
