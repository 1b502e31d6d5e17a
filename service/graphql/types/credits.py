"""Credit figures: a summary by source, and a time bucket of them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from service.usage.queries.models import Bucket, Summary
from service.usage.records import Source


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
        """Map a query summary."""
        return cls(
            total=summary.total,
            stream=summary.of(Source.STREAM),
            transcript=summary.of(Source.TRANSCRIPT),
            document=summary.of(Source.DOCUMENT),
            facts=summary.of(Source.FACTS),
            coding=summary.of(Source.CODING),
            dictation=summary.of(Source.DICTATION),
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
