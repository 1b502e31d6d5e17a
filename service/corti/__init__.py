"""Corti API client: REST (`CortiClient`), `/streams` sessions and errors.

This package is the only place that knows Corti's wire format
(docs/corti-api.md); everything else sees pydantic models with exact
`Decimal` credits and the `CortiError` family.
"""

from service.corti.client import CortiClient
from service.corti.exceptions import (
    CortiAuthError,
    CortiBadRequest,
    CortiError,
    CortiInsufficientBalance,
    CortiNotFound,
    CortiOutcomeUnknown,
    CortiStreamDropped,
    CortiStreamRefused,
    CortiUnavailable,
)
from service.corti.retry import RetryPolicy
from service.corti.stream import (
    StreamConfig,
    StreamParticipantConfig,
    StreamResult,
    StreamSession,
    StreamTimeouts,
    run_stream,
)
from service.corti.transcripts import PollPolicy
from service.corti.transport import CortiTransport

__all__ = [
    "CortiAuthError",
    "CortiBadRequest",
    "CortiClient",
    "CortiError",
    "CortiInsufficientBalance",
    "CortiNotFound",
    "CortiOutcomeUnknown",
    "CortiStreamDropped",
    "CortiStreamRefused",
    "CortiTransport",
    "CortiUnavailable",
    "PollPolicy",
    "RetryPolicy",
    "StreamConfig",
    "StreamParticipantConfig",
    "StreamResult",
    "StreamSession",
    "StreamTimeouts",
    "run_stream",
]
