"""SQL constructs whose text differs between PostgreSQL and SQLite."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from service.db.timebuckets import UNITS, zone
from service.db.types import Credits, UTCDateTime, encode_sqlite_credits

_ZONE_TEXT = re.compile(r"^[A-Za-z0-9_+\-/]+$")


class credit_sum(FunctionElement[Any]):
    """Exact sum of credits, zero for no rows."""

    type = Credits()
    inherit_cache = True
    name = "credit_sum"


@compiles(credit_sum, "postgresql")
def _credit_sum_pg(element: credit_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"coalesce(sum({compiler.process(element.clauses, **kw)}), 0)"


@compiles(credit_sum, "sqlite")
def _credit_sum_sqlite(element: credit_sum, compiler: SQLCompiler, **kw: Any) -> str:
    zero = encode_sqlite_credits(Decimal(0))
    return f"coalesce(credit_sum({compiler.process(element.clauses, **kw)}), '{zero}')"


class bucket_start(FunctionElement[Any]):
    """Start of the usage bucket holding a UTC timestamp, given every bucket edge.

    PostgreSQL looks the timestamp up among the edges (`width_bucket`), so its
    own time zone data plays no part: that may differ from Python's, and it
    reads zone names such as "CET" as fixed-offset abbreviations. SQLite runs
    the Python truncation that made the edges (`timebuckets.truncate`, registered
    on every SQLite connection as `tz_trunc`).
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
        edges: Sequence[datetime],
        unit: str,
        zone_name: str,
    ) -> None:
        _check_unit_and_zone(unit, zone_name)
        self.unit = unit
        self.zone_name = zone_name
        array = bindparam(
            None, list(edges), type_=postgresql.ARRAY(UTCDateTime()), unique=True
        )
        super().__init__(column, array)


@compiles(bucket_start, "postgresql")
def _bucket_start_pg(element: bucket_start, compiler: SQLCompiler, **kw: Any) -> str:
    column, edges = element.clauses.clauses
    # The same bind twice renders the same placeholder, so GROUP BY can repeat it.
    column_sql = compiler.process(column, **kw)
    edges_sql = compiler.process(edges, **kw)
    return f"({edges_sql})[width_bucket({column_sql}, {edges_sql})]"


@compiles(bucket_start, "sqlite")
def _bucket_start_sqlite(
    element: bucket_start, compiler: SQLCompiler, **kw: Any
) -> str:
    column = compiler.process(element.clauses.clauses[0], **kw)
    return f"tz_trunc({column}, '{element.unit}', '{element.zone_name}')"


def _check_unit_and_zone(unit: str, zone_name: str) -> None:
    if unit not in UNITS:
        raise ValueError(unit)
    zone(zone_name)  # KeyError unless a known IANA name
    if not _ZONE_TEXT.match(zone_name):
        raise ValueError(zone_name)
