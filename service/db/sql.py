"""SQL constructs whose text differs between PostgreSQL and SQLite."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

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


class tz_trunc(FunctionElement[Any]):
    """Start of the local hour/day/week/month holding a UTC timestamp."""

    type = UTCDateTime()
    inherit_cache = True
    name = "tz_trunc"
    # unit and zone change the SQL text, so they belong in the cache key.
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's own (instance-typed) name
        *FunctionElement._traverse_internals,
        ("unit", InternalTraversal.dp_string),
        ("zone_name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: Any, unit: str, zone_name: str) -> None:
        if unit not in UNITS:
            raise ValueError(unit)
        zone(zone_name)  # KeyError unless a known IANA name
        if not _ZONE_TEXT.match(zone_name):
            raise ValueError(zone_name)
        self.unit = unit
        self.zone_name = zone_name
        super().__init__(column)


@compiles(tz_trunc, "postgresql")
def _tz_trunc_pg(element: tz_trunc, compiler: SQLCompiler, **kw: Any) -> str:
    # Literals (validated above), so the same text can appear in GROUP BY.
    column = compiler.process(element.clauses, **kw)
    return f"date_trunc('{element.unit}', {column}, '{element.zone_name}')"


@compiles(tz_trunc, "sqlite")
def _tz_trunc_sqlite(element: tz_trunc, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"tz_trunc({column}, '{element.unit}', '{element.zone_name}')"
