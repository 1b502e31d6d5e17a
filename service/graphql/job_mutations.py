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
    DocumentRequest,
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
