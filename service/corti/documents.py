"""Corti documents: the billing create and the lookups that find a lost one.

`generate_document` bills credits and is never repeated once the request may
have reached Corti (`CortiOutcomeUnknown`); give each document a unique `name`
so that `find_documents` recognises it afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.corti.schemas import (
    Document,
    DocumentContext,
    DocumentCreateRequest,
    DocumentList,
    StringContext,
)
from service.corti.transport import CortiTransport, parse, seg


class DocumentEndpoints:
    """`/interactions/{id}/documents/` (a part of `CortiClient`)."""

    transport: CortiTransport

    async def generate_document(
        self,
        interaction_id: str,
        *,
        template_key: str,
        context: str | Sequence[DocumentContext],
        output_language: str = "en",
        name: str | None = None,
    ) -> Document:
        """Generate a document (bills credits; never auto-retried once sent).

        A plain string becomes one `string` context. Give a unique `name` so
        that `find_documents()` can recognise the document after a
        `CortiOutcomeUnknown`.
        """
        contexts: list[DocumentContext] = (
            [StringContext(data=context)] if isinstance(context, str) else list(context)
        )
        body = DocumentCreateRequest(
            context=contexts,
            template_key=template_key,
            output_language=output_language,
            name=name,
        )
        response = await self.transport.request(
            "POST",
            f"/interactions/{seg(interaction_id)}/documents/",
            json=body.to_wire(),
            billing=True,
        )
        return parse(response, Document, billing=True)

    async def get_document(self, interaction_id: str, document_id: str) -> Document:
        """Fetch one document with its credits."""
        path = f"/interactions/{seg(interaction_id)}/documents/{seg(document_id)}"
        return parse(await self.transport.request("GET", path), Document)

    async def list_documents(self, interaction_id: str) -> list[Document]:
        """All documents of the interaction, with their credits."""
        path = f"/interactions/{seg(interaction_id)}/documents/"
        return parse(await self.transport.request("GET", path), DocumentList).data

    async def find_documents(self, interaction_id: str, name: str) -> list[Document]:
        """Documents of the interaction called `name` (see `generate_document`)."""
        return [
            doc for doc in await self.list_documents(interaction_id) if doc.name == name
        ]
