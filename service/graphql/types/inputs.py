"""Input types and the argument annotations shared by the node types."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry

from service.graphql import args
from service.graphql.enums import Granularity
from service.usage.queries.models import TimeWindow

T = TypeVar("T")


@strawberry.input(description="Half-open [from, to). Either end may be left out.")
class TimeRange:
    """A half-open time range."""

    from_: datetime | None = strawberry.field(
        name="from", default=None, description="Inclusive start."
    )
    to: datetime | None = strawberry.field(default=None, description="Exclusive end.")

    def window(self) -> TimeWindow:
        """The validated range."""
        return args.window("range", self.from_, self.to)


def _time_range_from_input(
    cls: type[TimeRange], value: Mapping[str, Any], _context: object
) -> TimeRange:
    # A dashboard converts the same range for every row it lists; strawberry's
    # generic conversion re-resolves the fields' annotations each time
    # (graphql-core has already parsed both DateTime values).
    return cls(from_=value.get("from"), to=value.get("to"))


TimeRange.__strawberry_definition__.from_input = _time_range_from_input  # type: ignore[attr-defined]


def window_of(value: TimeRange | None) -> TimeWindow:
    """The validated window of an optional range argument (open when left out)."""
    return value.window() if value is not None else TimeWindow()


RANGE_DESCRIPTION = "Only usage records created inside this range."
BUCKET_RANGE = "The range to cover; both ends are required."
ZONE_DESCRIPTION = (
    "IANA time zone in which buckets are aligned, e.g. Europe/Copenhagen."
)
FIRST_DESCRIPTION = "Page size, 0 to 100."
AFTER_DESCRIPTION = "A cursor from pageInfo.endCursor."

RangeArg = Annotated[
    TimeRange | None, strawberry.argument(description=RANGE_DESCRIPTION)
]
BucketRangeArg = Annotated[TimeRange, strawberry.argument(description=BUCKET_RANGE)]
GranularityArg = Annotated[
    Granularity, strawberry.argument(description="Bucket width.")
]
ZoneArg = Annotated[str, strawberry.argument(description=ZONE_DESCRIPTION)]
FirstArg = Annotated[int, strawberry.argument(description=FIRST_DESCRIPTION)]
AfterArg = Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)]
# A mutation's one `input` argument (its fields are described on the input type).
InputArg = Annotated[
    T, strawberry.argument(description="The mutation's input; see its type.")
]
