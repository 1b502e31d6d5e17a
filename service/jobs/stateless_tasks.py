"""Corti's stateless calls as job kinds: requestFacts, requestCoding,
requestDictation, and guided documents (requestDocument with `guided`).

Their usage is attributed to the job's tenant and user directly (no
interaction), except a guided document's, which belongs to the job's
interaction. Exactly once, as far as Corti lets us:

- extract-facts, coding, guided documents: the request id (made when the job
  was queued, the record's externalId; a guided document is keyed by its
  document id when the answer has one) and the mark `sent` are saved before
  the call, and the answer's credits right after it. A later attempt that
  finds the answer records it; one that finds `sent` without an answer (a
  lost answer, a timeout, a 5xx after sending, or a worker that died
  mid-call) cannot ask Corti whether it billed, since stateless calls have
  no lookup, so it does not send again (that could bill twice) and fails the
  job saying the call may have been billed unrecorded. A definite refusal
  (4xx, 429, a refused connection) clears `sent`: nothing was billed.
- dictation (`/transcribe`): the session id from CONFIG_ACCEPTED is saved
  before any audio (so before anything is billed) and the final `usage` right
  after it arrives; the record is keyed by the session id (as
  recordDictationUsage is). A session that closes before `usage` is run again
  with a new session, as streams are (Corti bills a session when it reports
  `usage`); the latest `delta_usage` is only the job's provisional figure.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from service.corti import CortiError
from service.corti.exceptions import CortiOutcomeUnknown
from service.corti.stateless_schemas import DictationConfig
from service.jobs.audio import audio_chunks, rechunk
from service.jobs.corti_kind import JobRun, Task, corti_kind
from service.jobs.finish import Finish
from service.jobs.provisional import ProvisionalSaver
from service.jobs.records import JobKind
from service.jobs.registry import JobFailed
from service.usage.records import Source, UsageIn

log = logging.getLogger("service.jobs")

Answer = dict[str, Any]  # {"credits": str, "id": str | None}, saved in job.state


def _direct(run: JobRun, source: Source, external_id: str, credits: Decimal) -> UsageIn:
    """A usage record attributed to the job's tenant and user (no interaction)."""
    tenant_id = run.job.tenant_id
    if tenant_id is None:
        raise JobFailed("the job has no tenant")
    return UsageIn(
        source,
        None,
        external_id,
        credits,
        tenant_id=tenant_id,
        user_id=run.job.payload["user_id"],
    )


async def _call_once(
    run: JobRun, what: str, call: Callable[[], Awaitable[Answer]]
) -> Answer:
    """Make a billing call with no lookup at most once (see the module docstring)."""
    answer: Answer | None = run.state.get("answer")
    if answer is not None:
        log.info("job %s: recording the answer an earlier attempt saved", run.job.id)
        return answer
    if run.state.get("sent"):
        raise JobFailed(
            f"an earlier attempt sent the request ({what}) and its outcome is "
            "unknown; Corti cannot be asked whether it billed a stateless call, so "
            "it is not sent again (it may have been billed without being recorded)"
        )
    run.may_start(what)
    await run.save(sent=True)
    try:
        answer = await call()
    except CortiOutcomeUnknown as error:
        raise JobFailed(
            f"{error}; Corti cannot be asked whether it billed a stateless call, "
            "so it is not sent again (it may have been billed without being recorded)"
        ) from error
    except CortiError:
        await run.save(sent=False)  # a definite refusal: nothing was billed
        raise
    await run.save(answer=answer)
    return answer


@corti_kind(JobKind.FACTS)
async def request_facts(run: JobRun) -> Finish:
    """POST /tools/extract-facts; usage keyed by the job's request id."""
    payload = run.job.payload

    async def call() -> Answer:
        result = await run.corti.extract_facts(
            payload["texts"], output_language=payload.get("output_language", "en")
        )
        return {"credits": str(result.credits), "id": None}

    answer = await _call_once(run, "extracting facts", call)
    credits = Decimal(answer["credits"])
    return Finish(usage=[_direct(run, Source.FACTS, payload["request_id"], credits)])


@corti_kind(JobKind.CODING)
async def request_coding(run: JobRun) -> Finish:
    """POST /tools/coding/; usage keyed by the job's request id."""
    payload = run.job.payload

    async def call() -> Answer:
        result = await run.corti.predict_codes(
            payload["systems"],
            texts=payload.get("texts") or [],
            document_id=payload.get("document_id"),
            max_candidates=payload.get("max_candidates"),
        )
        return {"credits": str(result.credits), "id": None}

    answer = await _call_once(run, "predicting codes", call)
    credits = Decimal(answer["credits"])
    return Finish(usage=[_direct(run, Source.CODING, payload["request_id"], credits)])


async def guided_document(run: JobRun) -> Finish:
    """Guided POST /documents/ for the job's interaction (requestDocument, guided)."""
    interaction_id = run.interaction_id
    payload = run.job.payload

    async def call() -> Answer:
        result = await run.corti.create_guided_document(
            template_key=payload["template_key"],
            context=payload["context"],
            output_language=payload.get("output_language", "en"),
            name=payload["name"],
            interaction_id=interaction_id,
        )
        return {"credits": str(result.credits), "id": result.document.id}

    answer = await _call_once(run, "generating the guided document", call)
    key = answer.get("id") or str(run.job.id)
    credits = Decimal(answer["credits"])
    return Finish(usage=[UsageIn(Source.DOCUMENT, interaction_id, key, credits)])


@corti_kind(JobKind.DICTATION)
async def request_dictation(run: JobRun) -> Finish:
    """Send the audio through /transcribe; usage keyed by the session id."""
    final: Answer | None = run.state.get("answer")
    if final is None:
        run.may_start("opening the dictation")
        await run.save(
            dictations_opened=int(run.state.get("dictations_opened", 0)) + 1,
            provisional_credits=None,
            session_id=None,
        )
        config = DictationConfig(
            primary_language=run.job.payload.get("primary_language", "en")
        )
        saver = ProvisionalSaver(run)
        try:
            async with run.corti.open_dictation(
                config, on_delta=saver.offer
            ) as session:
                await run.save(session_id=session.session_id)
                chunks = rechunk(
                    audio_chunks(run.db, run.job.id), run.corti.stream_chunk_bytes
                )
                async for chunk in chunks:
                    await session.send_audio(chunk)
                result = await session.end()
        finally:
            await saver.stop()
        if result.late_deltas:
            log.warning(
                "job %s: ignored %d delta_usage after usage",
                run.job.id,
                result.late_deltas,
            )
        final = {"credits": str(result.credits), "id": result.session_id}
        await run.save(answer=final)
    credits = Decimal(final["credits"])
    return Finish(usage=[_direct(run, Source.DICTATION, final["id"], credits)])


TASKS: dict[JobKind, Task] = {
    JobKind.FACTS: request_facts,
    JobKind.CODING: request_coding,
    JobKind.DICTATION: request_dictation,
}
