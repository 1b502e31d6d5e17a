"""Queueing Corti jobs: checks the input and enqueues the job in the caller's unit of work.

A job row (and its uploaded audio) is written in the transaction of the
mutation that asks for it (`UnitOfWork.enqueue`, the outbox), so the worker
sees it only once that commits, and bad input leaves nothing behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.corti.schemas import EncounterStatus, EncounterType
from service.db.base import new_uuid
from service.db.models import Interaction, Job
from service.errors import BadUserInput, Forbidden, NotFound
from service.jobs.audio import Readable, pending_audio_bytes, store_audio
from service.jobs.records import JobKind
from service.uow import UnitOfWork
from service.usage.records import Source
from service.usage.repository import UsageRepository
from service.validation import check_id

ENCOUNTER_STATUSES: tuple[str, ...] = get_args(EncounterStatus)
ENCOUNTER_TYPES: tuple[str, ...] = get_args(EncounterType)
MAX_TEXT = 1000
# Context text of a stateless call, all items together (Corti's own limits
# are not published; this keeps a job row reasonable).
MAX_CONTEXT_CHARS = 200_000
MAX_CANDIDATES = 1000


@dataclass(frozen=True)
class NewInteraction:
    """createInteraction input."""

    tenant_id: str
    user_id: str
    encounter_identifier: str
    encounter_status: str = "planned"
    encounter_type: str = "first_consultation"
    title: str | None = None


@dataclass(frozen=True)
class TranscriptRequest:
    """requestTranscript input; exactly one of `audio` and `recording_id`."""

    interaction_id: str
    audio: object | None = None  # a Readable; checked when stored
    recording_id: str | None = None
    primary_language: str = "en"


@dataclass(frozen=True)
class DocumentRequest:
    """requestDocument input; `context` is joined by newlines for Corti."""

    interaction_id: str
    template_key: str
    context: list[str]
    output_language: str = "en"
    guided: bool = False


@dataclass(frozen=True)
class FactsRequest:
    """requestFacts input (POST /tools/extract-facts; attributed to the user)."""

    tenant_id: str
    user_id: str
    text: list[str]
    output_language: str = "en"


@dataclass(frozen=True)
class CodingRequest:
    """requestCoding input (POST /tools/coding/; attributed to the user)."""

    tenant_id: str
    user_id: str
    system: list[str]
    text: list[str] | None = None
    document_id: str | None = None
    max_candidates: int | None = None


@dataclass(frozen=True)
class DictationRequest:
    """requestDictation input (/transcribe; attributed to the user)."""

    tenant_id: str
    user_id: str
    audio: object | None  # a Readable; checked when stored
    primary_language: str = "en"


@dataclass(frozen=True)
class StreamRequest:
    """requestStream input."""

    interaction_id: str
    audio: object | None  # a Readable; checked when stored
    primary_language: str = "en"


def _text(field: str, value: str | None, *, required: bool = True) -> str | None:
    if value is None or not value.strip():
        if required:
            raise BadUserInput(field, "must not be empty")
        return None
    if len(value) > MAX_TEXT:
        raise BadUserInput(field, f"must be at most {MAX_TEXT} characters")
    return value


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadUserInput(field, f"must be one of {', '.join(allowed)}")
    return value


def _texts(field: str, values: list[str] | None, *, required: bool) -> list[str]:
    """Context texts: each non-empty, all together at most MAX_CONTEXT_CHARS."""
    values = list(values or [])
    if required and not values:
        raise BadUserInput(field, "must contain some text")
    for index, value in enumerate(values):
        if not value.strip():
            raise BadUserInput(f"{field}[{index}]", "must not be empty")
    if sum(len(v) for v in values) > MAX_CONTEXT_CHARS:
        raise BadUserInput(field, f"must be at most {MAX_CONTEXT_CHARS} characters")
    return values


def _owner(principal: Principal, tenant_id: str, user_id: str) -> tuple[str, str]:
    """The tenant and user a stateless call's usage is attributed to."""
    tenant = check_id("input.tenantId", tenant_id)
    user = check_id("input.userId", user_id)
    principal.require_tenant(tenant)
    return tenant, user


def _language(field: str, value: str) -> str:
    code = check_id(field, value)
    if len(code) > 35:
        raise BadUserInput(field, "is not a language code")
    return code


class JobService:
    """Stores jobs for the worker; every method checks input before writing."""

    async def create_interaction(
        self, uow: UnitOfWork, principal: Principal, data: NewInteraction
    ) -> Job:
        """Queue POST /interactions/ followed by registering the mapping."""
        _require_job_writer(principal)
        tenant_id = check_id("input.tenantId", data.tenant_id)
        user_id = check_id("input.userId", data.user_id)
        principal.require_tenant(tenant_id)
        payload = {
            "tenant_id": tenant_id,
            "user_id": user_id,
            "encounter_identifier": _text(
                "input.encounterIdentifier", data.encounter_identifier
            ),
            "encounter_status": _choice(
                "input.encounterStatus", data.encounter_status, ENCOUNTER_STATUSES
            ),
            "encounter_type": _choice(
                "input.encounterType", data.encounter_type, ENCOUNTER_TYPES
            ),
            "title": _text("input.title", data.title, required=False),
        }
        return await self._add(
            uow, principal, JobKind.CREATE_INTERACTION, payload, tenant_id, None
        )

    async def request_transcript(
        self,
        uow: UnitOfWork,
        principal: Principal,
        data: TranscriptRequest,
        *,
        max_audio_bytes: int,
    ) -> Job:
        """Queue an upload (unless `recording_id`) and a transcript."""
        _require_job_writer(principal)
        interaction = await _interaction(uow.session, principal, data.interaction_id)
        if (data.audio is None) == (data.recording_id is None):
            raise BadUserInput("input.audio", "give either audio or recordingId")
        payload: dict[str, Any] = {
            "primary_language": _language(
                "input.primaryLanguage", data.primary_language
            )
        }
        if data.recording_id is not None:
            payload["recording_id"] = check_id("input.recordingId", data.recording_id)
        job = await self._add(
            uow,
            principal,
            JobKind.TRANSCRIPT,
            payload,
            interaction.tenant_id,
            interaction.id,
        )
        if data.audio is not None:
            await self._store_audio(uow.session, job, data.audio, max_audio_bytes)
        return job

    async def request_document(
        self, uow: UnitOfWork, principal: Principal, data: DocumentRequest
    ) -> Job:
        """Queue POST .../documents/ with one `string` context."""
        _require_job_writer(principal)
        interaction = await _interaction(uow.session, principal, data.interaction_id)
        context = "\n".join(data.context)
        if not context.strip():
            raise BadUserInput("input.context", "must contain some text")
        job_id = new_uuid()
        payload: dict[str, Any] = {
            "template_key": _text("input.templateKey", data.template_key),
            "output_language": _language("input.outputLanguage", data.output_language),
            "context": context,
            # Lets a retry find the document a lost attempt created.
            "name": f"corti-usage job {job_id}",
        }
        if data.guided:
            payload["guided"] = True
        return await self._add(
            uow,
            principal,
            JobKind.DOCUMENT,
            payload,
            interaction.tenant_id,
            interaction.id,
            job_id=job_id,
        )

    async def request_facts(
        self, uow: UnitOfWork, principal: Principal, data: FactsRequest
    ) -> Job:
        """Queue POST /tools/extract-facts, its usage attributed to the user."""
        _require_job_writer(principal)
        tenant_id, user_id = _owner(principal, data.tenant_id, data.user_id)
        payload = {
            "user_id": user_id,
            "texts": _texts("input.text", data.text, required=True),
            "output_language": _language("input.outputLanguage", data.output_language),
            # The key of the usage record (stateless calls have no Corti id).
            "request_id": str(new_uuid()),
        }
        return await self._add(uow, principal, JobKind.FACTS, payload, tenant_id, None)

    async def request_coding(
        self, uow: UnitOfWork, principal: Principal, data: CodingRequest
    ) -> Job:
        """Queue POST /tools/coding/, its usage attributed to the user."""
        _require_job_writer(principal)
        tenant_id, user_id = _owner(principal, data.tenant_id, data.user_id)
        systems = [check_id("input.system", s) for s in data.system]
        if not systems:
            raise BadUserInput("input.system", "must name at least one coding system")
        texts = _texts("input.text", data.text, required=False)
        document_id = (
            None
            if data.document_id is None
            else check_id("input.documentId", data.document_id)
        )
        if not texts and document_id is None:
            raise BadUserInput("input.text", "give text, a documentId, or both")
        if document_id is not None:
            await _check_document(uow.session, principal, document_id, tenant_id)
        limit = data.max_candidates
        if limit is not None and not 0 <= limit <= MAX_CANDIDATES:
            raise BadUserInput(
                "input.maxCandidates", f"must be between 0 and {MAX_CANDIDATES}"
            )
        payload = {
            "user_id": user_id,
            "systems": systems,
            "texts": texts,
            "document_id": document_id,
            "max_candidates": limit,
            "request_id": str(new_uuid()),
        }
        return await self._add(uow, principal, JobKind.CODING, payload, tenant_id, None)

    async def request_dictation(
        self,
        uow: UnitOfWork,
        principal: Principal,
        data: DictationRequest,
        *,
        max_audio_bytes: int,
    ) -> Job:
        """Queue a /transcribe session with the uploaded audio, usage to the user."""
        _require_job_writer(principal)
        tenant_id, user_id = _owner(principal, data.tenant_id, data.user_id)
        if data.audio is None:
            raise BadUserInput("input.audio", "is required")
        payload = {
            "user_id": user_id,
            "primary_language": _language(
                "input.primaryLanguage", data.primary_language
            ),
        }
        job = await self._add(
            uow, principal, JobKind.DICTATION, payload, tenant_id, None
        )
        await self._store_audio(uow.session, job, data.audio, max_audio_bytes)
        return job

    async def request_stream(
        self,
        uow: UnitOfWork,
        principal: Principal,
        data: StreamRequest,
        *,
        max_audio_bytes: int,
    ) -> Job:
        """Queue a /streams session that sends the uploaded audio."""
        _require_job_writer(principal)
        interaction = await _interaction(uow.session, principal, data.interaction_id)
        if data.audio is None:
            raise BadUserInput("input.audio", "is required")
        payload = {
            "primary_language": _language(
                "input.primaryLanguage", data.primary_language
            )
        }
        job = await self._add(
            uow,
            principal,
            JobKind.STREAM,
            payload,
            interaction.tenant_id,
            interaction.id,
        )
        await self._store_audio(uow.session, job, data.audio, max_audio_bytes)
        return job

    async def _add(
        self,
        uow: UnitOfWork,
        principal: Principal,
        kind: JobKind,
        payload: dict[str, Any],
        tenant_id: str,
        interaction_id: str | None,
        *,
        job_id: uuid.UUID | None = None,
    ) -> Job:
        job_id = await uow.enqueue(
            kind.value,
            payload,
            tenant_id=tenant_id,
            id=job_id or new_uuid(),
            interaction_id=interaction_id,
            api_key_id=principal.key_id,
        )
        job = await uow.session.get(Job, job_id)  # in the session: no query
        assert job is not None
        return job

    async def _store_audio(
        self, session: AsyncSession, job: Job, audio: object, max_bytes: int
    ) -> None:
        if not isinstance(audio, Readable):
            raise BadUserInput("input.audio", "must be a file (multipart upload)")
        # Corti keeps at most `max_bytes` of audio per interaction (a dictation
        # has none: `max_bytes` is then its own limit).
        already = (
            await pending_audio_bytes(session, job.interaction_id)
            if job.interaction_id is not None
            else 0
        )
        limit = f"Corti's limit of {max_bytes} bytes"
        if already:
            limit += f" per interaction ({already} bytes are already queued or sent)"
        room = max_bytes - already
        size = getattr(audio, "size", None)
        if room <= 0 or (isinstance(size, int) and size > room):
            raise BadUserInput("input.audio", f"is larger than {limit}")
        job.audio_bytes = await store_audio(
            session, job.id, audio, field="input.audio", max_bytes=room, limit=limit
        )
        await session.flush()


def _require_job_writer(principal: Principal) -> None:
    principal.require_write()
    if principal.webhook:
        raise Forbidden("webhook senders cannot queue Corti calls; use an API key")


async def _interaction(
    session: AsyncSession, principal: Principal, interaction_id: str
) -> Interaction:
    """The registered interaction, or NOT_FOUND (also for other tenants')."""
    interaction_id = check_id("input.interactionId", interaction_id)
    row = await session.get(Interaction, interaction_id)
    if row is None or not principal.sees_tenant(row.tenant_id):
        raise NotFound(
            f"interaction {interaction_id!r} is not registered; "
            "use createInteraction or registerInteraction first"
        )
    return row


job_service = JobService()


async def _check_document(
    session: AsyncSession, principal: Principal, document_id: str, tenant_id: str
) -> None:
    """A document to code must be the job's tenant's, as far as the ledger knows.

    Every tenant's documents live in the one Corti account, so without this a
    key bound to one tenant could have another tenant's clinical document
    coded. The ledger knows a document by its DOCUMENT usage record (from
    requestDocument or recordDocumentUsage) and the tenant it was attributed
    to: one of another tenant is refused for every key; one the ledger does not
    know (or whose interaction is not registered yet) is refused for a
    tenant-bound key and allowed for an unbound one (documents made outside
    this service). Both refusals read the same, so a bound key learns nothing
    about other tenants' ids.
    """
    key = (Source.DOCUMENT.value, document_id)
    record = (await UsageRepository(session).records_by_key([key])).get(key)
    owner = None if record is None else record.tenant_id
    if owner == tenant_id or (owner is None and principal.tenant_id is None):
        return
    raise BadUserInput(
        "input.documentId",
        "is not a document of this tenant (record it or request it through this"
        " service first)",
    )
