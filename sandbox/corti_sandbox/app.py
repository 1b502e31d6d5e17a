"""The sandbox Starlette app: Corti's token, REST, /streams and /transcribe routes."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router, WebSocketRoute

from corti_sandbox import control, documents, rest, tools, transcripts
from corti_sandbox._json import corti_error
from corti_sandbox._logging import install_log_filters
from corti_sandbox.faults import FaultMiddleware
from corti_sandbox.oauth import Refusal, token_endpoint
from corti_sandbox.state import SandboxConfig, SandboxState
from corti_sandbox.streams import streams_endpoint
from corti_sandbox.transcribe import transcribe_endpoint

_I = "/v2/interactions/{interaction_id}"

ROUTES = [
    Route(
        "/realms/{tenant}/protocol/openid-connect/token",
        token_endpoint,
        methods=["POST"],
    ),
    Route("/v2/interactions/", rest.list_interactions, methods=["GET"]),
    Route("/v2/interactions/", rest.create_interaction, methods=["POST"]),
    Route(_I, rest.get_interaction, methods=["GET"]),
    Route(_I, rest.update_interaction, methods=["PATCH"]),
    Route(_I, rest.delete_interaction, methods=["DELETE"]),
    Route(f"{_I}/recordings/", rest.list_recordings, methods=["GET"]),
    Route(f"{_I}/recordings/", rest.upload_recording, methods=["POST"]),
    Route(f"{_I}/recordings/{{recording_id}}", rest.get_recording, methods=["GET"]),
    Route(
        f"{_I}/recordings/{{recording_id}}", rest.delete_recording, methods=["DELETE"]
    ),
    Route(f"{_I}/transcripts/", transcripts.list_transcripts, methods=["GET"]),
    Route(f"{_I}/transcripts/", transcripts.create_transcript, methods=["POST"]),
    Route(
        f"{_I}/transcripts/{{transcript_id}}",
        transcripts.get_transcript,
        methods=["GET"],
    ),
    Route(
        f"{_I}/transcripts/{{transcript_id}}",
        transcripts.delete_transcript,
        methods=["DELETE"],
    ),
    Route(
        f"{_I}/transcripts/{{transcript_id}}/status",
        transcripts.transcript_status,
        methods=["GET"],
    ),
    Route(f"{_I}/documents/", documents.list_documents, methods=["GET"]),
    Route(f"{_I}/documents/", documents.generate_document, methods=["POST"]),
    Route(f"{_I}/documents/{{document_id}}", documents.get_document, methods=["GET"]),
    Route(
        f"{_I}/documents/{{document_id}}", documents.delete_document, methods=["DELETE"]
    ),
    Route("/v2/documents/", documents.create_guided_document, methods=["POST"]),
    Route("/v2/tools/extract-facts", tools.extract_facts, methods=["POST"]),
    Route("/v2/tools/coding/", tools.predict_codes, methods=["POST"]),
    WebSocketRoute(
        "/audio-bridge/v2/interactions/{interaction_id}/streams", streams_endpoint
    ),
    WebSocketRoute("/audio-bridge/v2/transcribe", transcribe_endpoint),
    *control.routes,
]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    return exc.response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return corti_error(exc.status_code, str(exc.detail), headers=exc.headers)


def create_sandbox_app(
    config: SandboxConfig | None = None, **settings: Any
) -> Starlette:
    """Build the sandbox app; `settings` override fields of `config`."""
    base = config or SandboxConfig()
    state = SandboxState(base.updated(settings) if settings else base)
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(FaultMiddleware, state=state)],
        exception_handlers={Refusal: _refused, HTTPException: _http_error},
    )
    # Corti's paths are exact: no redirect from /interactions to /interactions/.
    assert isinstance(app.router, Router)
    app.router.redirect_slashes = False
    app.state.sandbox = state
    install_log_filters()
    return app
