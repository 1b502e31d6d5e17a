"""Errors that reach clients, each with a code from docs/contract.md."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An expected failure whose message is safe to show the caller."""

    code = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadUserInput(AppError):
    """The request is malformed; nothing was written."""

    code = "BAD_USER_INPUT"

    def __init__(self, field: str, message: str, **extensions: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **extensions)
        self.field = field


class NotFound(AppError):
    """The named object does not exist (or is invisible to the caller)."""

    code = "NOT_FOUND"


class Conflict(AppError):
    """The request contradicts what is already recorded."""

    code = "CONFLICT"


class Unauthenticated(AppError):
    """No valid credential came with the request."""

    code = "UNAUTHENTICATED"


class Forbidden(AppError):
    """The credential does not allow this operation."""

    code = "FORBIDDEN"


class UpstreamError(AppError):
    """Corti failed or refused."""

    code = "UPSTREAM_ERROR"


class BudgetExceeded(AppError):
    """An enforced budget's period is used up; the Corti call is refused."""

    code = "BUDGET_EXCEEDED"


class Unavailable(AppError):
    """A dependency (the database) is unreachable right now: retry shortly.

    HTTP 503 with `Retry-After` when nothing of the request succeeded.
    """

    code = "UNAVAILABLE"
    status = 503
    retry_after = 1

    def __init__(
        self, message: str = "the database is unreachable right now; retry shortly"
    ) -> None:
        super().__init__(message, retryAfter=self.retry_after)
