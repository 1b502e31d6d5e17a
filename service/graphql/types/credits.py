"""Credit figures: a summary by source, and a time bucket of them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from service.usage.queries.models import ZERO, Bucket, Summary
from service.usage.records import Source

_STREAM, _TRANSCRIPT, _DOCUMENT = (
    Source.STREAM.value,
    Source.TRANSCRIPT.value,
    Source.DOCUMENT.value,
)
_FACTS, _CODING, _DICTATION = (
    Source.FACTS.value,
    Source.CODING.value,
    Source.DICTATION.value,
)


@strawberry.type(
    description="Credits summed over usage records, in total and by source."
)
class CreditSummary:
    """Exact credit totals."""

    total: Decimal = strawberry.field(description="Credits from every source.")
    stream: Decimal = strawberry.field(
        description="Credits reported by /streams sessions."
    )
    transcript: Decimal = strawberry.field(
        description="Credits reported on transcripts."
    )
    document: Decimal = strawberry.field(description="Credits reported on documents.")
    facts: Decimal = strawberry.field(
        description="Credits reported by fact extraction (/tools/extract-facts)."
    )
    coding: Decimal = strawberry.field(
        description="Credits reported by coding (/tools/coding/)."
    )
    dictation: Decimal = strawberry.field(
        description="Credits reported by /transcribe (dictation) sessions."
    )
    records: int = strawberry.field(description="How many usage records were summed.")

    @classmethod
    def from_summary(cls, summary: Summary) -> CreditSummary:
        """Map a query summary (a dashboard maps hundreds: plain dict lookups,
        not Summary.of's per-source enum value)."""
        by_source = summary.by_source
        get = by_source.get
        return cls(
            total=sum(by_source.values(), ZERO),
            stream=get(_STREAM, ZERO),
            transcript=get(_TRANSCRIPT, ZERO),
            document=get(_DOCUMENT, ZERO),
            facts=get(_FACTS, ZERO),
            coding=get(_CODING, ZERO),
            dictation=get(_DICTATION, ZERO),
            records=summary.records,
        )


@strawberry.type(description="Credits of one time bucket [start, end).")
class UsageBucket:
    """A time bucket."""

    start: datetime = strawberry.field(description="Bucket start (inclusive).")
    end: datetime = strawberry.field(description="Bucket end (exclusive).")
    credits: CreditSummary = strawberry.field(
        description="Credits of usage inside both the bucket and the requested range."
    )

    @classmethod
    def from_bucket(cls, bucket: Bucket) -> UsageBucket:
        """Map a query bucket."""
        return cls(
            start=bucket.start,
            end=bucket.end,
            credits=CreditSummary.from_summary(bucket.credits),
        )
