"""SQL constructs whose text differs between PostgreSQL and SQLite."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, Select, Text, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from service.db.timebuckets import UNITS, zone
from service.db.types import (
    CREDIT_SCALE,
    SQLITE_CREDIT_WIDTH,
    Credits,
    UTCDateTime,
    encode_sqlite_credits,
)

_ZONE_TEXT = re.compile(r"^[A-Za-z0-9_+\-/]+$")


class credit_sum(FunctionElement[Any]):
    """Exact sum of credits, zero for no rows."""

    type = Credits()
    inherit_cache = True
    name = "credit_sum"


@compiles(credit_sum, "postgresql")
def _credit_sum_pg(element: credit_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"coalesce(sum({compiler.process(element.clauses, **kw)}), 0)"


# SQLite: the padded text (30 integer digits, ".", 9 decimals; see
# service.db.types) is cut into two 15-digit integer pieces and the decimals,
# each summed as a 64-bit integer by SQLite itself: exact, and `sum` raises
# "integer overflow" rather than round (after 9,223 values of 1e15 credits or
# more). The carries are added and the sum printed in the same padded form.
# No Python function runs per row (the `credit_sum` aggregate registered on
# every connection is about three times slower).
_WHOLE = SQLITE_CREDIT_WIDTH - CREDIT_SCALE - 1
_HALF = _WHOLE // 2
assert _HALF * 2 == _WHOLE


@compiles(credit_sum, "sqlite")
def _credit_sum_sqlite(element: credit_sum, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)

    def total(start: int, length: int) -> str:
        return f"sum(CAST(substr({value}, {start}, {length}) AS INTEGER))"

    high = total(1, _HALF)
    low = total(_HALF + 1, _HALF)
    decimals = total(_WHOLE + 2, CREDIT_SCALE)
    # Identical aggregate calls are computed once per group by SQLite.
    low_carried = f"({low} + {decimals} / {10**CREDIT_SCALE})"
    printed = (
        f"printf('%0{_HALF}d%0{_HALF}d.%0{CREDIT_SCALE}d',"
        f" {high} + {low_carried} / {10**_HALF},"
        f" {low_carried} % {10**_HALF}, {decimals} % {10**CREDIT_SCALE})"
    )
    zero = encode_sqlite_credits(Decimal(0))
    return f"coalesce(CASE WHEN count({value}) > 0 THEN {printed} END, '{zero}')"


class bucket_start(FunctionElement[Any]):
    """Start of the usage bucket holding a UTC timestamp, given every bucket edge.

    The timestamp is looked up among the edges, so the database's own time
    zone data plays no part (PostgreSQL's may differ from Python's, and it
    reads zone names such as "CET" as fixed-offset abbreviations): PostgreSQL
    with `width_bucket` over an array, SQLite with a binary search written as
    nested CASE expressions over one parameter per edge (about log2(buckets)
    comparisons per row, in SQLite itself; before, each row called the
    Python truncation `tz_trunc`, as it still does when no edges are given).
    Both give the last edge at or before the timestamp (the last one for any
    later timestamp; rows before the first are filtered out by callers).
    """

    type = UTCDateTime()
    inherit_cache = True
    name = "bucket_start"
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's own (instance-typed) name
        *FunctionElement._traverse_internals,
        ("unit", InternalTraversal.dp_string),
        ("zone_name", InternalTraversal.dp_string),
    ]

    def __init__(
        self,
        column: Any,
        edges: Sequence[datetime] | EdgeParameters,
        unit: str,
        zone_name: str,
    ) -> None:
        _check_unit_and_zone(unit, zone_name)
        self.unit = unit
        self.zone_name = zone_name
        if not isinstance(edges, EdgeParameters):
            edges = EdgeParameters(edges)
        super().__init__(column, edges.array, *edges.each)


class EdgeParameters:
    """The bound parameters of a list of bucket edges: one array (PostgreSQL)
    and one per edge (SQLite). Built once, they can serve several
    `bucket_start`s of one statement."""

    def __init__(self, edges: Sequence[datetime]) -> None:
        self.array = bindparam(
            None, list(edges), type_=postgresql.ARRAY(UTCDateTime()), unique=True
        )
        kind = UTCDateTime()
        self.each = [bindparam(None, e, type_=kind, unique=True) for e in edges]


@compiles(bucket_start, "postgresql")
def _bucket_start_pg(element: bucket_start, compiler: SQLCompiler, **kw: Any) -> str:
    column, edges, *_ = element.clauses.clauses
    # The same bind twice renders the same placeholder, so GROUP BY can repeat it.
    column_sql = compiler.process(column, **kw)
    edges_sql = compiler.process(edges, **kw)
    return f"({edges_sql})[width_bucket({column_sql}, {edges_sql})]"


@compiles(bucket_start, "sqlite")
def _bucket_start_sqlite(
    element: bucket_start, compiler: SQLCompiler, **kw: Any
) -> str:
    column_clause, _, *edge_clauses = element.clauses.clauses
    column = compiler.process(column_clause, **kw)
    edges = [compiler.process(edge, **kw) for edge in edge_clauses]

    def search(low: int, high: int) -> str:
        """The start of the bucket among low..high holding the column."""
        if low == high:
            return edges[low]
        middle = (low + high + 1) // 2
        return (
            f"CASE WHEN {column} < {edges[middle]} THEN {search(low, middle - 1)}"
            f" ELSE {search(middle, high)} END"
        )

    if not edges:
        # No edges given (an export of unknown span): the Python truncation
        # that makes the edges, row by row.
        return f"tz_trunc({column}, '{element.unit}', '{element.zone_name}')"
    return search(0, len(edges) - 1)


def _check_unit_and_zone(unit: str, zone_name: str) -> None:
    if unit not in UNITS:
        raise ValueError(unit)
    zone(zone_name)  # KeyError unless a known IANA name
    if not _ZONE_TEXT.match(zone_name):
        raise ValueError(zone_name)


def text_pairs(first: str, second: str) -> Select[Any]:
    """PostgreSQL: the rows (first, second) of two text-array parameters of
    those names, zipped (`unnest($1, $2)`), for `tuple_(...).in_(...)`: one
    statement for any number of pairs, instead of an expanding IN whose SQL
    is rendered anew for every call."""
    pairs = (
        func.unnest(
            bindparam(first, type_=ARRAY(Text)), bindparam(second, type_=ARRAY(Text))
        )
        .table_valued(first, second)
        .render_derived()
    )
    return select(pairs.c[first], pairs.c[second])
