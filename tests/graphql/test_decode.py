"""Request bodies nested to the recursion limit leave other objects' finalizers alone.

A body of 100,000 `[` takes the JSON parser to Python's recursion limit. A
cyclic garbage collection started there ran whatever finalizers were due (an
SQLAlchemy connection's return to its pool, say) with no stack left, where
they failed with RecursionError; the collector is paused for the parse.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from service.graphql.view import GraphQLView

DEEP = b"[" * 100_000


def _depth(n: int) -> int:
    return 0 if n == 0 else 1 + _depth(n - 1)


class _Cycle:
    """Garbage in a reference cycle whose finalizer needs some stack."""

    finalized: ClassVar[list[int]] = []

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _Cycle.finalized.append(_depth(50))


@pytest.fixture
def unraisable() -> Iterator[list[Any]]:
    """What finalizers raised, instead of pytest's own hook."""
    caught: list[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = caught.append
    try:
        yield caught
    finally:
        sys.unraisablehook = hook


def _garbage_in_the_middle_generation() -> None:
    """200 cycles that only a collection of generation 1 finds."""
    keep = [_Cycle() for _ in range(200)]
    gc.collect(0)  # the survivors move to generation 1
    del keep


def decode(data: bytes) -> object:
    view = GraphQLView.__new__(GraphQLView)
    return view.decode_json(data)


def test_a_body_deeper_than_the_recursion_limit_is_malformed_and_finalizers_run_later(
    unraisable: list[Any],
) -> None:
    thresholds = gc.get_threshold()
    try:
        # Generation 1 is collected after `n` collections of generation 0 (one
        # per allocation here), so some `n` starts it deep inside the parse.
        for n in range(10, 1000, 10):
            gc.set_threshold(*thresholds)
            _Cycle.finalized.clear()
            _garbage_in_the_middle_generation()
            gc.set_threshold(1, n, 1_000_000)
            with pytest.raises(json.JSONDecodeError):
                decode(DEEP)
            assert gc.isenabled()
            gc.collect(1)
            assert [u.exc_value for u in unraisable] == [], n
            assert _Cycle.finalized == [50] * 200, n
    finally:
        gc.set_threshold(*thresholds)


def test_the_collector_is_left_as_it_was_and_numbers_stay_exact() -> None:
    gc.disable()
    try:
        assert decode(b'{"credits": [0.1]}') == {"credits": [Decimal("0.1")]}
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert decode(b'{"credits": 0.1}') == {"credits": Decimal("0.1")}
    assert gc.isenabled()
