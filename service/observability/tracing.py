"""OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Off (the default), nothing of the SDK is imported or installed: no provider, no
instrumentation, no middleware; `operation_span` and `job_span` are a check
of one module-level flag. On, `setup()` installs a tracer provider exporting
OTLP over HTTP/protobuf (the standard OTEL_* variables apply, e.g.
OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_SAMPLER) and
instruments httpx (Corti REST calls) and the SQLAlchemy engines handed to
`instrument_engine`. The API wraps itself in the ASGI middleware, which
continues an incoming W3C `traceparent`.

A job carries the context of the request that enqueued it (`jobs.trace_context`,
a `{"traceparent": ..., "tracestate": ...}` carrier), and the worker's span per
attempt continues that trace.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger("service.tracing")

_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
DEFAULT_SERVICE_NAME = "corti-usage-ledger"

_enabled = False
_tracer: Any = None


def configured() -> bool:
    """Whether the environment asks for tracing (an OTLP endpoint is set)."""
    return any(os.environ.get(name) for name in _ENDPOINT_VARIABLES)


def enabled() -> bool:
    """Whether `setup()` installed tracing in this process."""
    return _enabled


def setup(role: str) -> bool:
    """Install the SDK and instrumentation once per process, if configured."""
    global _enabled, _tracer
    if _enabled:
        return True
    if not configured():
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", DEFAULT_SERVICE_NAME),
            "service.namespace": "corti-usage",
            "process.role": role,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    _tracer = trace.get_tracer("service")
    _enabled = True
    log.info("tracing on: OTLP/HTTP export (%s)", role)
    return True


def shutdown() -> None:
    """Flush and stop the exporter (on process exit)."""
    if not _enabled:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if callable(stop):
        stop()


def instrument_engine(engine: Any) -> None:
    """Spans for every SQL statement of `engine` (an AsyncEngine)."""
    if not _enabled:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its declared range stops below SQLAlchemy 2.1, which it works with (engine
    # events only; tests/ops/test_tracing.py checks the statement spans).
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, skip_dep_check=True)


def middleware() -> list[Any]:
    """OpenTelemetry's ASGI middleware for the app (none when tracing is off)."""
    if not _enabled:
        return []
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.middleware import Middleware

    return [Middleware(OpenTelemetryMiddleware, excluded_urls="healthz,readyz,metrics")]


@contextlib.contextmanager
def operation_span(kind: str, name: str | None) -> Iterator[Any]:
    """The span of one GraphQL operation (type and name as attributes)."""
    if not _enabled:
        yield None
        return
    title = f"{kind} {name}" if name else kind
    with _tracer.start_as_current_span(
        f"graphql.{title}",
        attributes={
            "graphql.operation.type": kind,
            "graphql.operation.name": name or "",
        },
    ) as span:
        yield span


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A client span (e.g. a Corti websocket) in the current trace."""
    if not _enabled:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=attributes
    ) as current:
        yield current


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers, to store with a job."""
    if not _enabled:
        return None
    from opentelemetry.propagate import inject

    headers: dict[str, str] = {}
    inject(headers)
    return headers or None


@contextlib.contextmanager
def job_span(
    kind: str, job_id: Any, attempt: int, context: Mapping[str, str] | None
) -> Iterator[Any]:
    """A span per job attempt, in the trace of the request that enqueued it."""
    if not _enabled:
        yield None
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    parent = extract(dict(context)) if context else None
    with _tracer.start_as_current_span(
        f"job {kind}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"job.kind": kind, "job.id": str(job_id), "job.attempt": attempt},
    ) as span:
        yield span
