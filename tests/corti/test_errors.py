"""CortiError.from_response mapping and the retry delay policy."""

from __future__ import annotations

import httpx
import pytest

from service.corti import (
    CortiAuthError,
    CortiBadRequest,
    CortiError,
    CortiInsufficientBalance,
    CortiNotFound,
    CortiOutcomeUnknown,
    CortiUnavailable,
    RetryPolicy,
)
from service.corti.exceptions import parse_retry_after


def _response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("GET", "https://api.eu.corti.app/v2/interactions/x")
    return httpx.Response(status, content=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, CortiBadRequest, False),
        (401, CortiAuthError, False),
        (403, CortiAuthError, False),
        (404, CortiNotFound, False),
        (408, CortiUnavailable, True),
        (422, CortiBadRequest, False),
        (429, CortiInsufficientBalance, False),
        (500, CortiUnavailable, True),
        (503, CortiUnavailable, True),
        (504, CortiUnavailable, True),
    ],
)
def test_status_mapping(status: int, cls: type[CortiError], retryable: bool) -> None:
    error = CortiError.from_response(_response(status))
    assert type(error) is cls
    assert error.status == status
    assert error.retryable is retryable
    assert error.maybe_billed is False


def test_detail_from_sdk_shape() -> None:
    body = b'{"requestid":"r1","status":404,"type":"not_found","detail":"Interaction x not found"}'
    error = CortiError.from_response(_response(404, body))
    assert error.detail == "Interaction x not found"
    assert error.request_id == "r1"
    assert error.error_type == "not_found"
    assert "GET /v2/interactions/x" in str(error)
    assert error.reason == "Interaction x not found"


def test_detail_from_rfc9457_shape() -> None:
    body = b'{"requestid":"r2","status":400,"type":"about:blank","title":"Bad","details":"bad uuid"}'
    assert CortiError.from_response(_response(400, body)).detail == "bad uuid"


def test_401_reason_comes_from_www_authenticate() -> None:
    header = 'Bearer error="invalid_token", error_description="Token is not active"'
    error = CortiError.from_response(
        _response(401, headers={"WWW-Authenticate": header})
    )
    assert error.detail == "Token is not active"


def test_unreadable_body_is_tolerated() -> None:
    error = CortiError.from_response(_response(502, b"<html>bad gateway</html>"))
    assert isinstance(error, CortiUnavailable)
    assert error.detail is None


def test_outcome_unknown_is_retryable_and_maybe_billed() -> None:
    error = CortiOutcomeUnknown("lost")
    assert error.retryable is True
    assert error.maybe_billed is True
    assert isinstance(error, CortiUnavailable)


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert (
        CortiError.from_response(
            _response(429, headers={"Retry-After": "2"})
        ).retry_after
        == 2.0
    )


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.1, max_retry_after=30)
    for attempt, expected in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        for _ in range(20):
            assert expected * 0.9 <= policy.delay(attempt) <= expected * 1.1
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(1, retry_after=100) == 30
