"""Primary keys are version 7 UUIDs: unique, and ordered by creation time."""

from __future__ import annotations

import time
import uuid

from service.db.base import new_uuid


def test_new_uuid_is_version_7_with_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = new_uuid()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_new_uuids_are_unique_and_ordered_across_milliseconds() -> None:
    first = [new_uuid() for _ in range(10_000)]
    time.sleep(0.002)
    second = [new_uuid() for _ in range(10_000)]
    assert len(set(first + second)) == 20_000
    assert max(first) < min(second)
