"""The `webhook.deliver` job kind: one delivery attempt per job attempt.

Enqueued by `delivery.enqueue_event` in the transaction that raised the event
(the outbox). Each attempt signs the stored body with the delivery's id as
`webhook-id`, the same on every attempt (delivery.attempt). Outcomes map to
the queue: delivered → the job SUCCEEDED; a non-2xx answer, a timeout
(`WEBHOOK_TIMEOUT_SECONDS`) or a refused connection → `RetryLater`, with the
queue's capped exponential backoff (`JOB_RETRY_BASE_SECONDS`,
`JOB_RETRY_MAX_SECONDS`); 410, a refused address or `WEBHOOK_MAX_ATTEMPTS`
spent → `JobFailed`. The job's attempt number is the delivery's, so an
attempt lost with a crashed worker counts: a delivery is tried at most
`WEBHOOK_MAX_ATTEMPTS` times, however its workers die. Counted in
`ledger_webhook_deliveries_total{outcome}` (succeeded, retried, failed).
"""

from __future__ import annotations

import uuid

import httpx

from service.config import get_settings
from service.jobs.registry import JobContext, JobFailed, RetryLater, job_kind
from service.observability.metrics import WEBHOOK_DELIVERIES
from service.webhooks.delivery import JOB_KIND, Options, Result, attempt

# Only a ceiling for the queue: the delivery gives up by itself at
# WEBHOOK_MAX_ATTEMPTS (JobFailed), before the queue would.
QUEUE_CEILING = 1000


@job_kind(JOB_KIND, max_attempts=QUEUE_CEILING)
async def deliver(ctx: JobContext) -> None:
    """Send the delivery once; RetryLater or JobFailed unless it landed."""
    settings = ctx.settings or get_settings()
    options = Options(
        max_attempts=settings.webhook_max_attempts,
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private_urls,
    )
    try:
        delivery_id = uuid.UUID(str(ctx.payload["delivery_id"]))
    except (KeyError, ValueError):
        raise JobFailed("the job names no delivery") from None
    async with httpx.AsyncClient() as client:
        outcome = await attempt(
            ctx.db, delivery_id, client, options, number=ctx.attempt
        )
    if outcome.result is Result.DELIVERED:
        WEBHOOK_DELIVERIES.labels(outcome="succeeded").inc()
        return
    if outcome.result is Result.RETRY:
        WEBHOOK_DELIVERIES.labels(outcome="retried").inc()
        raise RetryLater(outcome.error or "not delivered")
    WEBHOOK_DELIVERIES.labels(outcome="failed").inc()
    raise JobFailed(outcome.error or "not delivered")
