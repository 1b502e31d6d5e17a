"""Log filters for the sandbox's uvicorn: no tokens, no noise from planned drops."""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

# uvicorn logs an error when an app stops mid-answer; that is the point of a
# `lose_answer` drop, so it is silenced for those requests only.
_dropping: ContextVar[bool] = ContextVar("sandbox_dropping", default=False)
_INCOMPLETE = "ASGI callable returned without completing response."
# Websocket URLs carry `token=Bearer%20...`; uvicorn logs paths with queries.
_TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"]+")


def mark_dropped() -> None:
    """Note that the current request's connection is dropped on purpose."""
    _dropping.set(True)


class _SandboxLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _dropping.get() and message == _INCOMPLETE:
            return False
        if "token=" in message:
            record.msg = _TOKEN_IN_URL.sub(r"\1REDACTED", message)
            record.args = None
        return True


def install_log_filters() -> None:
    """Attach the filter to uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _SandboxLogFilter) for f in logger.filters):
            logger.addFilter(_SandboxLogFilter())
