"""A per-key token bucket (in process memory; each API process limits alone)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

MAX_TRACKED = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """`per_minute` requests per key per minute, with bursts up to the same number."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[Hashable, _Bucket] = field(default_factory=dict)

    def take(self, key: Hashable) -> float:
        """Spend one token; returns 0 when allowed, else seconds until the next one."""
        now = self.clock()
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._buckets.clear()  # bounded memory; worst case a fresh burst
            bucket = self._buckets[key] = _Bucket(
                tokens=float(self.per_minute), updated=now
            )
        bucket.tokens = min(
            float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate
        )
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate
