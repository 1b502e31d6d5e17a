"""The Corti job kinds: what each does at Corti (registered in service/jobs/registry.py).

Each task is resumable: its progress lives in `job.state`, saved before every
call that Corti may bill or that creates something, so a retry after a crash,
a timeout or a lost answer first looks at what the lost attempt may have made
(the interaction's transcripts or documents) and records that instead of
creating it again. Tasks never hold a database session while awaiting Corti.
The stateless kinds (requestFacts, requestCoding, requestDictation, and guided
documents) are in stateless_tasks.py.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from service.corti import CortiAuthError, StreamConfig
from service.corti.schemas import Document, Transcript
from service.jobs import stateless_tasks
from service.jobs.audio import audio_chunks, rechunk
from service.jobs.corti_kind import JobRun, Task
from service.jobs.corti_kind import corti_kind as _corti_kind
from service.jobs.finish import Finish, Registration
from service.jobs.provisional import ProvisionalSaver
from service.jobs.records import JobKind
from service.jobs.registry import JobFailed
from service.usage.records import Source, UsageIn

log = logging.getLogger("service.jobs")


@_corti_kind(JobKind.CREATE_INTERACTION)
async def create_interaction(run: JobRun) -> Finish:
    """POST /interactions/, then map the new interaction to tenant and user."""
    payload = run.job.payload
    interaction_id = run.state.get("interaction_id")
    if interaction_id is None:
        # Not billed; a lost answer can leave an unused interaction at Corti.
        run.may_start("creating the interaction")
        await run.save(create_requested=True)
        created = await run.corti.create_interaction(
            payload["encounter_identifier"],
            encounter_status=payload["encounter_status"],
            encounter_type=payload["encounter_type"],
            title=payload.get("title"),
        )
        interaction_id = created.interaction_id
        await run.save(interaction_id=interaction_id)
    return Finish(
        register=Registration(interaction_id, payload["tenant_id"], payload["user_id"])
    )


@_corti_kind(JobKind.TRANSCRIPT)
async def request_transcript(run: JobRun) -> Finish:
    """Upload the audio (unless a recording id was given) and transcribe it."""
    interaction_id = run.interaction_id
    recording_id = run.job.payload.get("recording_id") or run.state.get("recording_id")
    if recording_id is None:
        run.may_start("uploading the audio")
        recording_id = await _upload(run)
        await run.save(recording_id=recording_id)
    elif "known_transcripts" not in run.state and "recording_id" in run.job.payload:
        # A caller's own recording may already have transcripts; remember them
        # so a recovery does not take them for ours.
        listed = await run.corti.list_transcripts(interaction_id)
        await run.save(known_transcripts=[item.id for item in listed])

    found: list[Transcript] = []
    if run.state.get("transcript_requested_for") == recording_id:
        found = await _find_transcripts(run, recording_id)
    if not found:
        run.may_start("creating the transcript")
        await run.save(transcript_requested_for=recording_id)
        created = await run.corti.create_transcript(
            interaction_id,
            recording_id,
            primary_language=run.job.payload.get("primary_language", "en"),
            wait=False,
        )
        await run.save(transcript_ids=[created.id])
        found = [created]
    done = [await _completed(run, transcript) for transcript in found]
    failed = [t.id for t in done if t.status != "completed"]
    return Finish(
        usage=[
            UsageIn(Source.TRANSCRIPT, interaction_id, t.id, t.credits) for t in done
        ],
        failure=f"Corti could not transcribe the recording (transcript {failed[0]})"
        if failed
        else None,
    )


@_corti_kind(JobKind.DOCUMENT)
async def request_document(run: JobRun) -> Finish:
    """Generate the document (named after the job, so a retry can find it)."""
    interaction_id = run.interaction_id
    payload = run.job.payload
    if payload.get("guided"):
        return await stateless_tasks.guided_document(run)
    name = payload["name"]
    documents: list[Document] = []
    if run.state.get("document_requested"):
        documents = await run.corti.find_documents(interaction_id, name)
        if documents:
            log.info("job %s: found the document a lost attempt made", run.job.id)
    if not documents:
        run.may_start("generating the document")
        await run.save(document_requested=True)
        documents = [
            await run.corti.generate_document(
                interaction_id,
                template_key=payload["template_key"],
                context=payload["context"],
                output_language=payload.get("output_language", "en"),
                name=name,
            )
        ]
    return Finish(
        usage=[
            UsageIn(Source.DOCUMENT, interaction_id, d.id, d.credits) for d in documents
        ]
    )


@_corti_kind(JobKind.STREAM)
async def request_stream(run: JobRun) -> Finish:
    """Send the audio through /streams; the final `usage` is keyed by the job id.

    A session that closes before `usage` is not billed by Corti and is run
    again; a refused config (CONFIG_DENIED, ...) fails the job.
    """
    interaction_id = run.interaction_id
    if "final_credits" in run.state:
        # An earlier attempt got `usage` but did not live to record it.
        credits = Decimal(run.state["final_credits"])
    else:
        run.may_start("opening the stream")
        await run.save(
            streams_opened=int(run.state.get("streams_opened", 0)) + 1,
            provisional_credits=None,
        )
        config = StreamConfig(
            primary_language=run.job.payload.get("primary_language", "en")
        )
        saver = ProvisionalSaver(run)
        try:
            async with run.corti.open_stream(
                interaction_id, config, on_delta=saver.offer
            ) as session:
                chunks = rechunk(
                    audio_chunks(run.db, run.job.id), run.corti.stream_chunk_bytes
                )
                async for chunk in chunks:
                    await session.send_audio(chunk)
                result = await session.end()
        finally:
            await saver.stop()
        credits = result.credits
        await run.save(final_credits=str(credits))
    return Finish(
        usage=[UsageIn(Source.STREAM, interaction_id, str(run.job.id), credits)]
    )


TASKS: dict[JobKind, Task] = {
    JobKind.CREATE_INTERACTION: create_interaction,
    JobKind.TRANSCRIPT: request_transcript,
    JobKind.DOCUMENT: request_document,
    JobKind.STREAM: request_stream,
    **stateless_tasks.TASKS,
}


async def _upload(run: JobRun) -> str:
    """Stream the stored audio to Corti, chunk by chunk; the recording id."""
    size = run.job.audio_bytes
    if not size:
        raise JobFailed("the job's audio is gone")
    for tries_left in (1, 0):
        try:
            created = await run.corti.upload_recording(
                run.interaction_id, audio_chunks(run.db, run.job.id), size=size
            )
        except CortiAuthError as error:
            # A streamed body cannot be replayed inside the client, so the
            # one retry after a token refresh happens here.
            if not error.retryable or not tries_left:
                raise
            continue
        return created.recording_id
    raise AssertionError("unreachable")


async def _find_transcripts(run: JobRun, recording_id: str) -> list[Transcript]:
    """Transcripts of the recording that earlier attempts created."""
    known = set(run.state.get("known_transcripts", []))
    ids = run.state.get("transcript_ids") or []
    if ids:
        return [await run.corti.get_transcript(run.interaction_id, i) for i in ids]
    found = [
        t
        for t in await run.corti.find_transcripts(run.interaction_id, recording_id)
        if t.id not in known
    ]
    if found:
        log.info(
            "job %s: found %d transcript(s) a lost attempt made", run.job.id, len(found)
        )
        await run.save(transcript_ids=[t.id for t in found])
    return found


async def _completed(run: JobRun, transcript: Transcript) -> Transcript:
    if transcript.status != "processing":
        return transcript
    return await run.corti.wait_for_transcript(run.interaction_id, transcript.id)
