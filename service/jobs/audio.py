"""Uploaded audio, kept in the database in ~1 MiB rows until its job ends.

The API process copies an upload into `job_audio_chunks` one chunk at a time,
in the transaction that stores the job, so it never holds a whole recording in
memory (the multipart parser already spooled it to a temporary file). The
worker reads it back one chunk per short read transaction while it streams it
to Corti, and the transaction that ends the job deletes it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, runtime_checkable

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Job, JobAudioChunk
from service.db.session import Database
from service.errors import BadUserInput
from service.jobs.records import JobState

CHUNK_BYTES = 1024 * 1024


@runtime_checkable
class Readable(Protocol):
    """An upload: starlette's `UploadFile` or anything with `async read(n)`."""

    async def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...


async def store_audio(
    session: AsyncSession,
    job_id: uuid.UUID,
    upload: Readable,
    *,
    field: str,
    max_bytes: int,
    limit: str = "the upload limit",
) -> int:
    """Copy an upload into the job's chunk rows; returns its size in bytes.

    Empty or oversize audio raises BAD_USER_INPUT, and the caller's
    transaction (which also holds the job row) rolls back.
    """
    total = 0
    seq = 0
    while True:
        data = await upload.read(CHUNK_BYTES)
        if not data:
            break
        total += len(data)
        if total > max_bytes:
            raise BadUserInput(field, f"is larger than {limit}")
        await session.execute(
            insert(JobAudioChunk).values(job_id=job_id, seq=seq, data=data)
        )
        seq += 1
    if total == 0:
        raise BadUserInput(field, "is empty")
    return total


async def audio_chunks(db: Database, job_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The job's audio, one stored chunk per short read transaction."""
    seq = 0
    while True:
        async with db.read() as session:
            data = await session.scalar(
                select(JobAudioChunk.data).where(
                    JobAudioChunk.job_id == job_id, JobAudioChunk.seq == seq
                )
            )
        if data is None:
            return
        yield bytes(data)
        seq += 1


async def rechunk(chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """Cut a byte stream into pieces of `size` bytes (the last may be shorter)."""
    pending = bytearray()
    async for piece in chunks:
        pending += piece
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


async def delete_audio(session: AsyncSession, job_id: uuid.UUID) -> None:
    """Forget the job's audio (when the job ends)."""
    await session.execute(delete(JobAudioChunk).where(JobAudioChunk.job_id == job_id))


async def pending_audio_bytes(session: AsyncSession, interaction_id: str) -> int:
    """Audio already sent or on its way to Corti for this interaction."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Job.audio_bytes), 0)).where(
            Job.interaction_id == interaction_id,
            Job.status != JobState.FAILED.value,
        )
    )
    return int(total or 0)
