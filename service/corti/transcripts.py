"""Corti transcripts: the billing create, polling while processing, and lookups.

`create_transcript` bills credits and is never repeated once the request may
have reached Corti (`CortiOutcomeUnknown`); `find_transcripts` tells the
caller what a lost create billed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from service.corti.exceptions import CortiError, CortiOutcomeUnknown, CortiUnavailable
from service.corti.schemas import (
    Transcript,
    TranscriptCreateRequest,
    TranscriptList,
    TranscriptListItem,
    TranscriptParticipant,
    TranscriptStatus,
)
from service.corti.transport import CortiTransport, parse, seg


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How to wait for a transcript that Corti still reports as processing."""

    initial_delay: float = 1.0
    max_delay: float = 10.0
    factor: float = 1.5
    timeout: float = 900.0


class TranscriptEndpoints:
    """`/interactions/{id}/transcripts/` (a part of `CortiClient`)."""

    transport: CortiTransport
    poll: PollPolicy

    async def create_transcript(
        self,
        interaction_id: str,
        recording_id: str,
        *,
        primary_language: str = "en",
        diarize: bool | None = None,
        is_multichannel: bool | None = None,
        participants: Sequence[TranscriptParticipant] | None = None,
        wait: bool = True,
    ) -> Transcript:
        """Create a transcript (bills credits; never auto-retried once sent).

        When Corti answers `processing`, polls the status endpoint with backoff
        and then GETs the transcript (unless `wait=False`). The final status may
        be `completed` or `failed`; both carry `usageInfo.creditsConsumed`.
        Raises `CortiOutcomeUnknown` when the create may have billed without an
        answer, or was billed but waiting for it failed: call
        `find_transcripts()` before creating again.
        """
        body = TranscriptCreateRequest(
            recording_id=recording_id,
            primary_language=primary_language,
            diarize=diarize,
            is_multichannel=is_multichannel,
            participants=list(participants) if participants is not None else None,
        )
        response = await self.transport.request(
            "POST",
            f"/interactions/{seg(interaction_id)}/transcripts/",
            json=body.to_wire(),
            billing=True,
        )
        transcript = parse(response, Transcript, billing=True)
        if not wait or transcript.status != "processing":
            return transcript
        try:
            return await self.wait_for_transcript(interaction_id, transcript.id)
        except CortiError as exc:
            # Created and billed, but its final credits are not known yet.
            raise CortiOutcomeUnknown(
                f"transcript {transcript.id} was created but waiting for it failed: "
                f"{exc}",
                status=exc.status,
                detail=exc.detail,
            ) from exc

    async def wait_for_transcript(
        self, interaction_id: str, transcript_id: str, *, within: float | None = None
    ) -> Transcript:
        """Poll a processing transcript's status with backoff, then GET it."""
        deadline = time.monotonic() + (
            within if within is not None else self.poll.timeout
        )
        delay = self.poll.initial_delay
        while True:
            if time.monotonic() + delay > deadline:
                raise CortiUnavailable(
                    f"transcript {transcript_id} still processing after the poll timeout"
                )
            await asyncio.sleep(delay)
            status = await self.get_transcript_status(interaction_id, transcript_id)
            if status.status != "processing":
                break
            delay = min(delay * self.poll.factor, self.poll.max_delay)
        return await self.get_transcript(interaction_id, transcript_id)

    async def get_transcript_status(
        self, interaction_id: str, transcript_id: str
    ) -> TranscriptStatus:
        """The status of a transcript: completed, processing or failed."""
        path = f"/interactions/{seg(interaction_id)}/transcripts/{seg(transcript_id)}/status"
        return parse(await self.transport.request("GET", path), TranscriptStatus)

    async def get_transcript(
        self, interaction_id: str, transcript_id: str
    ) -> Transcript:
        """Fetch one transcript with its credits."""
        path = f"/interactions/{seg(interaction_id)}/transcripts/{seg(transcript_id)}"
        return parse(await self.transport.request("GET", path), Transcript)

    async def list_transcripts(
        self, interaction_id: str, *, full: bool = False
    ) -> list[TranscriptListItem]:
        """The interaction's transcripts (list items carry no credits)."""
        response = await self.transport.request(
            "GET",
            f"/interactions/{seg(interaction_id)}/transcripts/",
            params={"full": "true" if full else "false"},
        )
        return parse(response, TranscriptList).transcripts or []

    async def find_transcripts(
        self, interaction_id: str, recording_id: str, *, wait: bool = True
    ) -> list[Transcript]:
        """Transcripts of the interaction made from `recording_id`, with credits.

        Use after `CortiOutcomeUnknown` to see what a lost create billed. With
        `wait`, transcripts still processing are waited for, so the credits
        returned are final.
        """
        items = await self.list_transcripts(interaction_id)
        found = []
        for item in items:
            transcript = await self.get_transcript(interaction_id, item.id)
            if transcript.recording_id != recording_id:
                continue
            if wait and transcript.status == "processing":
                transcript = await self.wait_for_transcript(interaction_id, item.id)
            found.append(transcript)
        return found
