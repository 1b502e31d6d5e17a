"""The one retry policy of every Corti call, REST and websocket alike.

`call_with_retries(policy, what, attempt, tokens=...)` runs `attempt(token)`
until it returns, deciding after each `CortiError` it raises:
- 401 (with `tokens`): forget the token, fetch a new one, and retry once.
- `maybe_billed` (`CortiOutcomeUnknown`): raised at once; the caller must look
  for what the lost attempt created before trying again.
- 429 (Corti: "insufficient balance"): up to `max_429_attempts` tries.
- any other retryable error (408, 5xx, timeouts, network): capped exponential
  backoff with jitter, honouring `Retry-After`, up to `policy.max_attempts`.
- everything else: raised at once.
An attempt that cannot be replayed (a streamed upload) gets one try.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from service.corti.auth import TokenProvider
from service.corti.exceptions import CortiError, CortiInsufficientBalance

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry transient Corti failures."""

    max_attempts: int = 4
    max_429_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.1
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return max(0.0, delay * (1 + random.uniform(-self.jitter, self.jitter)))


async def call_with_retries(
    policy: RetryPolicy,
    what: str,
    attempt: Callable[[str], Awaitable[T]],
    *,
    tokens: TokenProvider | None,
    replayable: bool = True,
    max_429_attempts: int | None = None,
) -> T:
    """`attempt(token)` under the retry policy (token "" without `tokens`)."""
    balance_limit = (
        policy.max_429_attempts if max_429_attempts is None else max_429_attempts
    )
    failures = 0
    balance_failures = 0
    refreshed = False
    while True:
        token = await tokens.token() if tokens is not None else ""
        try:
            return await attempt(token)
        except CortiError as error:
            if error.status == 401 and tokens is not None:
                tokens.invalidate(token)
                if refreshed or not replayable:
                    error.retryable = not refreshed
                    raise
                refreshed = True
                logger.info("Corti refused the token on %s; refreshing once", what)
                continue
            if error.maybe_billed:
                raise
            if isinstance(error, CortiInsufficientBalance):
                balance_failures += 1
                if not replayable or balance_failures >= balance_limit:
                    raise
                await _backoff(policy, what, error, balance_failures)
                continue
            if not error.retryable:
                raise
            failures += 1
            if not replayable or failures >= policy.max_attempts:
                raise
            await _backoff(policy, what, error, failures)


async def _backoff(
    policy: RetryPolicy, what: str, error: CortiError, attempt: int
) -> None:
    delay = policy.delay(attempt, error.retry_after)
    reason = str(error.status) if error.status is not None else str(error)
    logger.warning(
        "Corti %s failed (%s), try %d; retrying in %.2fs", what, reason, attempt, delay
    )
    await asyncio.sleep(delay)
