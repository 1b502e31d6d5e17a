"""Corti's stateless calls: `POST /tools/extract-facts`, `POST /tools/coding/`,
and guided documents (`POST /documents/`).

All three bill credits (`usageInfo.creditsConsumed`) and none can be looked
up afterwards: Corti keeps no record of a stateless call that a client could
list, and no idempotency key exists. So, like the other billing creates, they
are never repeated once the request may have reached Corti
(`CortiOutcomeUnknown`), and the caller cannot resolve that ambiguity by
asking Corti (service/jobs/tasks.py says what the jobs do about it).
"""

from __future__ import annotations

from collections.abc import Sequence

from service.corti.schemas import DocumentContext, StringContext
from service.corti.stateless_schemas import (
    CodesFilter,
    CodesPredicted,
    CodingRequest,
    DocumentIdContext,
    FactsExtracted,
    FactsExtractRequest,
    GuidedDocument,
    GuidedDocumentRequest,
    TextContext,
)
from service.corti.transport import CortiTransport, parse


class ToolEndpoints:
    """`/tools/...` and guided `/documents/` (a part of `CortiClient`)."""

    transport: CortiTransport

    async def extract_facts(
        self, texts: Sequence[str], *, output_language: str = "en"
    ) -> FactsExtracted:
        """Extract facts from text (bills credits; never auto-retried once sent)."""
        body = FactsExtractRequest(
            context=[TextContext(text=text) for text in texts],
            output_language=output_language,
        )
        response = await self.transport.request(
            "POST", "/tools/extract-facts", json=body.to_wire(), billing=True
        )
        return parse(response, FactsExtracted, billing=True)

    async def predict_codes(
        self,
        systems: Sequence[str],
        *,
        texts: Sequence[str] = (),
        document_id: str | None = None,
        filter: CodesFilter | None = None,
        max_candidates: int | None = None,
    ) -> CodesPredicted:
        """Predict codes from text and/or a document (bills credits; never
        auto-retried once sent)."""
        context: list[TextContext | DocumentIdContext] = [
            TextContext(text=text) for text in texts
        ]
        if document_id is not None:
            context.append(DocumentIdContext(document_id=document_id))
        body = CodingRequest(
            system=list(systems),
            context=context,
            filter=filter,
            max_candidates=max_candidates,
        )
        response = await self.transport.request(
            "POST", "/tools/coding/", json=body.to_wire(), billing=True
        )
        return parse(response, CodesPredicted, billing=True)

    async def create_guided_document(
        self,
        *,
        template_key: str,
        context: str | Sequence[DocumentContext],
        output_language: str = "en",
        name: str | None = None,
        interaction_id: str | None = None,
    ) -> GuidedDocument:
        """Guided document generation (bills credits; never auto-retried once sent)."""
        contexts: list[DocumentContext] = (
            [StringContext(data=context)] if isinstance(context, str) else list(context)
        )
        body = GuidedDocumentRequest(
            context=contexts,
            template_key=template_key,
            output_language=output_language,
            name=name,
            interaction_id=interaction_id,
        )
        response = await self.transport.request(
            "POST", "/documents/", json=body.to_wire(), billing=True
        )
        return parse(response, GuidedDocument, billing=True)
