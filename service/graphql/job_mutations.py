"""Mutations that queue Corti calls for the background worker.

Each stores a job (and any uploaded audio) in one unit of work and answers at
once with the QUEUED job; `Query.job` follows it. Audio arrives as a GraphQL
multipart upload (https://github.com/jaydenseric/graphql-multipart-request-spec).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import strawberry
from strawberry.file_uploads import Upload

from service.auth.principal import Principal
from service.budgets.enforcement import guard_job
from service.graphql.context import Info
from service.graphql.jobs import Job
from service.graphql.types import InputArg
from service.jobs.service import (
    CodingRequest,
    DictationRequest,
    DocumentRequest,
    FactsRequest,
    NewInteraction,
    StreamRequest,
    TranscriptRequest,
    job_service,
)
from service.uow import UnitOfWork, unit_of_work

LANGUAGE = "Language code of the audio, e.g. en, de, da."


@asynccontextmanager
async def _closing(upload: object) -> AsyncIterator[None]:
    """Close an upload's temporary file as soon as it is stored (or refused)."""
    try:
        yield
    finally:
        close = getattr(upload, "close", None)
        if callable(close):
            await close()


@asynccontextmanager
async def _writing(info: Info) -> AsyncIterator[tuple[UnitOfWork, Principal]]:
    """The caller (UNAUTHENTICATED if none) and a unit of work on its behalf."""
    caller = info.context.caller
    async with unit_of_work(info.context.db, caller) as uow:
        yield uow, caller


@strawberry.input(
    description="Create a Corti interaction, then map it to a tenant and user."
)
class CreateInteractionInput:
    """createInteraction input."""

    tenant_id: strawberry.ID = strawberry.field(description="The customer's tenant id.")
    user_id: strawberry.ID = strawberry.field(description="The customer's user id.")
    encounter_identifier: str = strawberry.field(
        description="Corti `encounter.identifier`, e.g. the customer's visit id."
    )
    encounter_status: str | None = strawberry.field(
        default="planned",
        description=(
            "Corti `encounter.status`: planned, in-progress, on-hold, completed, "
            "cancelled or deleted."
        ),
    )
    encounter_type: str | None = strawberry.field(
        default="first_consultation",
        description=(
            "Corti `encounter.type`: first_consultation, consultation, emergency, "
            "inpatient or outpatient."
        ),
    )
    title: str | None = strawberry.field(
        default=None, description="Corti `encounter.title`."
    )


@strawberry.input(
    description="Transcribe audio: an upload, or a recording already at Corti."
)
class RequestTranscriptInput:
    """requestTranscript input."""

    interaction_id: strawberry.ID = strawberry.field(
        description="A registered Corti interactionId."
    )
    audio: Upload | None = strawberry.field(
        default=None,
        description="The audio file (multipart upload, at most 150 MB); or give "
        "recordingId.",
    )
    recording_id: strawberry.ID | None = strawberry.field(
        default=None, description="A recording already uploaded to the interaction."
    )
    primary_language: str | None = strawberry.field(default="en", description=LANGUAGE)


@strawberry.input(description="Generate a document from a template and context text.")
class RequestDocumentInput:
    """requestDocument input."""

    interaction_id: strawberry.ID = strawberry.field(
        description="A registered Corti interactionId."
    )
    template_key: str = strawberry.field(description="Corti template key.")
    output_language: str | None = strawberry.field(
        default="en", description="Language of the document."
    )
    context: list[str] = strawberry.field(
        description="Context text; sent to Corti as one `string` context, joined "
        "by newlines. Must not be empty."
    )
    guided: bool | None = strawberry.field(
        default=False,
        description=(
            "Use Corti's guided documents (POST /documents/ naming the "
            "interaction, answered with {document, usageInfo}) instead of POST "
            ".../documents/. Recorded as DOCUMENT of the interaction, keyed by the "
            "document id when the answer has one, by the job id otherwise. A lost "
            "answer cannot be looked up, so it is never sent twice: the job fails "
            "instead."
        ),
    )


@strawberry.input(description="Stream audio through Corti's /streams websocket.")
class RequestStreamInput:
    """requestStream input."""

    interaction_id: strawberry.ID = strawberry.field(
        description="A registered Corti interactionId."
    )
    audio: Upload = strawberry.field(
        description="The audio file (multipart upload), sent in ~250 ms chunks."
    )
    primary_language: str | None = strawberry.field(default="en", description=LANGUAGE)


_TENANT = "The customer's tenant id; the usage is attributed to it directly."
_USER = "The customer's user id; the usage is attributed to it directly."


@strawberry.input(
    description="Extract facts from text with Corti's stateless POST /tools/extract-facts."
)
class RequestFactsInput:
    """requestFacts input."""

    tenant_id: strawberry.ID = strawberry.field(description=_TENANT)
    user_id: strawberry.ID = strawberry.field(description=_USER)
    text: list[str] = strawberry.field(
        description="Context texts, each sent as one {type: text} context."
    )
    output_language: str | None = strawberry.field(
        default="en", description="Language of the extracted facts."
    )


@strawberry.input(
    description="Predict medical codes with Corti's stateless POST /tools/coding/."
)
class RequestCodingInput:
    """requestCoding input."""

    tenant_id: strawberry.ID = strawberry.field(description=_TENANT)
    user_id: strawberry.ID = strawberry.field(description=_USER)
    system: list[str] = strawberry.field(
        description="Coding systems, e.g. icd10cm-outpatient, cpt."
    )
    text: list[str] | None = strawberry.field(
        default=None,
        description="Context texts ({type: text}); give text, documentId, or both.",
    )
    document_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "A Corti document to code ({type: documentId}): one of this tenant's "
            "documents known to the ledger (an unbound key may also name one the "
            "ledger does not know)."
        ),
    )
    max_candidates: int | None = strawberry.field(
        default=None, description="At most this many candidate codes (0-1000)."
    )


@strawberry.input(
    description="Dictate: stream audio through Corti's stateless /transcribe websocket."
)
class RequestDictationInput:
    """requestDictation input."""

    tenant_id: strawberry.ID = strawberry.field(description=_TENANT)
    user_id: strawberry.ID = strawberry.field(description=_USER)
    audio: Upload = strawberry.field(
        description="The audio file (multipart upload), sent in ~250 ms chunks."
    )
    primary_language: str | None = strawberry.field(default="en", description=LANGUAGE)


@strawberry.type(description="Corti calls run by the background worker.")
class JobMutation:
    """Job mutations."""

    @strawberry.mutation(
        description=(
            "Queue POST /interactions/ at Corti; when it succeeds the new "
            "interaction is registered for the tenant and user."
        )
    )
    async def create_interaction(
        self, info: Info, input: InputArg[CreateInteractionInput]
    ) -> Job:
        caller = info.context.caller
        async with unit_of_work(info.context.db, caller) as uow:
            await guard_job(
                uow.session,
                caller,
                tenant_id=str(input.tenant_id),
                user_id=str(input.user_id),
            )
            row = await job_service.create_interaction(
                uow,
                caller,
                NewInteraction(
                    tenant_id=str(input.tenant_id),
                    user_id=str(input.user_id),
                    encounter_identifier=input.encounter_identifier,
                    encounter_status=input.encounter_status or "planned",
                    encounter_type=input.encounter_type or "first_consultation",
                    title=input.title,
                ),
            )
        return Job.from_model(row)

    @strawberry.mutation(
        description=(
            "Queue a transcript: upload the audio (unless recordingId), create the "
            "transcript, and record its credits."
        )
    )
    async def request_transcript(
        self, info: Info, input: InputArg[RequestTranscriptInput]
    ) -> Job:
        async with _closing(input.audio), _writing(info) as (uow, caller):
            await guard_job(
                uow.session, caller, interaction_id=str(input.interaction_id)
            )
            row = await job_service.request_transcript(
                uow,
                caller,
                TranscriptRequest(
                    interaction_id=str(input.interaction_id),
                    audio=input.audio,
                    recording_id=(
                        str(input.recording_id)
                        if input.recording_id is not None
                        else None
                    ),
                    primary_language=input.primary_language or "en",
                ),
                max_audio_bytes=info.context.settings.max_upload_bytes,
            )
        return Job.from_model(row)

    @strawberry.mutation(
        description="Queue a document generation and record its credits."
    )
    async def request_document(
        self, info: Info, input: InputArg[RequestDocumentInput]
    ) -> Job:
        caller = info.context.caller
        async with unit_of_work(info.context.db, caller) as uow:
            await guard_job(
                uow.session, caller, interaction_id=str(input.interaction_id)
            )
            row = await job_service.request_document(
                uow,
                caller,
                DocumentRequest(
                    interaction_id=str(input.interaction_id),
                    template_key=input.template_key,
                    context=list(input.context),
                    output_language=input.output_language or "en",
                    guided=bool(input.guided),
                ),
            )
        return Job.from_model(row)

    @strawberry.mutation(
        description=(
            "Queue a /streams session (config, audio, end) and record the credits "
            "of its final usage message, keyed by the job id."
        )
    )
    async def request_stream(
        self, info: Info, input: InputArg[RequestStreamInput]
    ) -> Job:
        async with _closing(input.audio), _writing(info) as (uow, caller):
            await guard_job(
                uow.session, caller, interaction_id=str(input.interaction_id)
            )
            row = await job_service.request_stream(
                uow,
                caller,
                StreamRequest(
                    interaction_id=str(input.interaction_id),
                    audio=input.audio,
                    primary_language=input.primary_language or "en",
                ),
                max_audio_bytes=info.context.settings.max_upload_bytes,
            )
        return Job.from_model(row)

    @strawberry.mutation(
        description=(
            "Queue Corti's POST /tools/extract-facts and record its "
            "usageInfo.creditsConsumed as FACTS, attributed to the tenant and user "
            "directly, keyed by a request id the job makes."
        )
    )
    async def request_facts(
        self, info: Info, input: InputArg[RequestFactsInput]
    ) -> Job:
        caller = info.context.caller
        async with unit_of_work(info.context.db, caller) as uow:
            await guard_job(
                uow.session,
                caller,
                tenant_id=str(input.tenant_id),
                user_id=str(input.user_id),
            )
            row = await job_service.request_facts(
                uow,
                caller,
                FactsRequest(
                    tenant_id=str(input.tenant_id),
                    user_id=str(input.user_id),
                    text=list(input.text),
                    output_language=input.output_language or "en",
                ),
            )
        return Job.from_model(row)

    @strawberry.mutation(
        description=(
            "Queue Corti's POST /tools/coding/ and record its "
            "usageInfo.creditsConsumed as CODING, attributed to the tenant and user "
            "directly, keyed by a request id the job makes."
        )
    )
    async def request_coding(
        self, info: Info, input: InputArg[RequestCodingInput]
    ) -> Job:
        caller = info.context.caller
        async with unit_of_work(info.context.db, caller) as uow:
            await guard_job(
                uow.session,
                caller,
                tenant_id=str(input.tenant_id),
                user_id=str(input.user_id),
            )
            row = await job_service.request_coding(
                uow,
                caller,
                CodingRequest(
                    tenant_id=str(input.tenant_id),
                    user_id=str(input.user_id),
                    system=list(input.system),
                    text=list(input.text) if input.text is not None else None,
                    document_id=(
                        str(input.document_id)
                        if input.document_id is not None
                        else None
                    ),
                    max_candidates=input.max_candidates,
                ),
            )
        return Job.from_model(row)

    @strawberry.mutation(
        description=(
            "Queue a /transcribe dictation (config, audio, end) and record the "
            "credits of its final usage message as DICTATION, attributed to the "
            "tenant and user directly, keyed by Corti's sessionId."
        )
    )
    async def request_dictation(
        self, info: Info, input: InputArg[RequestDictationInput]
    ) -> Job:
        async with _closing(input.audio), _writing(info) as (uow, caller):
            await guard_job(
                uow.session,
                caller,
                tenant_id=str(input.tenant_id),
                user_id=str(input.user_id),
            )
            row = await job_service.request_dictation(
                uow,
                caller,
                DictationRequest(
                    tenant_id=str(input.tenant_id),
                    user_id=str(input.user_id),
                    audio=input.audio,
                    primary_language=input.primary_language or "en",
                ),
                max_audio_bytes=info.context.settings.max_upload_bytes,
            )
        return Job.from_model(row)
