"""Corti interactions and recordings: the REST calls that bill nothing."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence

from service.corti.schemas import (
    Encounter,
    Interaction,
    InteractionCreated,
    InteractionCreateRequest,
    InteractionList,
    Patient,
    RecordingCreated,
)
from service.corti.transport import CortiTransport, parse, seg


class InteractionEndpoints:
    """`/interactions/` and their `/recordings/` (a part of `CortiClient`)."""

    transport: CortiTransport

    async def create_interaction(
        self,
        encounter_identifier: str,
        *,
        encounter_status: str = "planned",
        encounter_type: str = "first_consultation",
        title: str | None = None,
        assigned_user_id: str | None = None,
        patient: Patient | None = None,
    ) -> InteractionCreated:
        """Create an interaction (`POST /interactions/`); no credits involved."""
        body = InteractionCreateRequest(
            assigned_user_id=assigned_user_id,
            encounter=Encounter(
                identifier=encounter_identifier,
                status=encounter_status,
                type=encounter_type,
                title=title,
            ),
            patient=patient,
        )
        response = await self.transport.request(
            "POST", "/interactions/", json=body.to_wire()
        )
        return parse(response, InteractionCreated)

    async def get_interaction(self, interaction_id: str) -> Interaction:
        """Fetch one interaction (`CortiNotFound` if unknown)."""
        response = await self.transport.request(
            "GET", f"/interactions/{seg(interaction_id)}"
        )
        return parse(response, Interaction)

    async def list_interactions(
        self,
        *,
        index: int = 1,
        page_size: int = 10,
        sort: str | None = None,
        direction: str | None = None,
        encounter_status: Sequence[str] = (),
    ) -> list[Interaction]:
        """One page of interactions; an empty list means past the last page."""
        params: list[tuple[str, str | int]] = [
            ("pageSize", page_size),
            ("index", index),
        ]
        if sort:
            params.append(("sort", sort))
        if direction:
            params.append(("direction", direction))
        params.extend(("encounterStatus", status) for status in encounter_status)
        response = await self.transport.request("GET", "/interactions/", params=params)
        return parse(response, InteractionList).interactions

    async def delete_interaction(self, interaction_id: str) -> None:
        """Delete an interaction (204)."""
        await self.transport.request("DELETE", f"/interactions/{seg(interaction_id)}")

    async def upload_recording(
        self,
        interaction_id: str,
        audio: bytes | AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        size: int | None = None,
    ) -> RecordingCreated:
        """Upload raw audio bytes (not multipart) and return the recording id.

        With `bytes` the upload is retried like any call. An async iterator of
        chunks cannot be replayed, so it gets one try (give `size` to send a
        Content-Length instead of chunked encoding).
        """
        headers = {"Content-Type": content_type}
        replayable = isinstance(audio, bytes)
        if size is not None and not replayable:
            headers["Content-Length"] = str(size)
        response = await self.transport.request(
            "POST",
            f"/interactions/{seg(interaction_id)}/recordings/",
            content=audio,
            headers=headers,
            replayable=replayable,
        )
        return parse(response, RecordingCreated)
