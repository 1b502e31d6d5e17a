"""Test-only control endpoints under `/_sandbox/` (no auth; loopback use only).

- `GET  /_sandbox/billed`  -> `{"billed": [{kind, id, interaction_id, tenant,
  credits, at}], "total_credits": n}`; `?interaction_id=`, `?kind=` and
  `?tenant=` filter. `kind` is transcript, document, stream, facts, coding or
  dictation; stateless calls have `interaction_id` null.
- `GET  /_sandbox/faults`, `POST /_sandbox/faults` (one fault object, a list,
  or `{"faults": [...]}`; see faults.py), `DELETE /_sandbox/faults`.
- `GET  /_sandbox/config`, `PATCH /_sandbox/config` (any SandboxConfig field).
- `GET  /_sandbox/stats`   -> `{tokens_issued, active_tokens, streams_opened,
  in_flight, requests: [{method, path, status}]}`.
- `POST /_sandbox/reset`   -> wait (up to 5 s) for calls in progress, e.g.
  delayed answers, then forget entities, ledger, faults, stats; settings go
  back to the startup ones; issued tokens stay valid.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corti_sandbox._json import JSONResponse
from corti_sandbox.faults import Fault, fault_list
from corti_sandbox.oauth import sandbox_state

_FAULTS = TypeAdapter(list[Fault])


def _problem(status: int, detail: str) -> Response:
    return JSONResponse({"detail": detail}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw else {}


async def billed(request: Request) -> Response:
    """The billing ledger: every billed entity, in billing order."""
    state = sandbox_state(request)
    wanted = request.query_params.get("interaction_id")
    kind = request.query_params.get("kind")
    tenant = request.query_params.get("tenant")
    rows = [
        b
        for b in state.ledger
        if (wanted is None or b.interaction_id == wanted)
        and (kind is None or b.kind == kind)
        and (tenant is None or b.tenant == tenant)
    ]
    total = sum((b.credits for b in rows), Decimal(0))
    return JSONResponse({"billed": [b.to_json() for b in rows], "total_credits": total})


async def get_faults(request: Request) -> Response:
    """The armed faults with their remaining counts."""
    return JSONResponse(fault_list(sandbox_state(request)))


async def add_faults(request: Request) -> Response:
    """Arm faults; `revoke_tokens` is done at once instead of armed."""
    state = sandbox_state(request)
    try:
        body = await _body(request)
        items = body.get("faults", [body]) if isinstance(body, dict) else body
        faults = _FAULTS.validate_python(items)
    except (ValueError, ValidationError) as exc:
        return _problem(400, str(exc))
    for fault in faults:
        if fault.kind == "revoke_tokens":
            state.revoke_tokens()
        else:
            state.faults.append(fault)
    return JSONResponse(fault_list(state))


async def clear_faults(request: Request) -> Response:
    """Disarm every fault."""
    state = sandbox_state(request)
    state.faults.clear()
    return JSONResponse(fault_list(state))


async def get_config(request: Request) -> Response:
    """The current settings (client secret masked)."""
    return JSONResponse(sandbox_state(request).config.to_json())


async def update_config(request: Request) -> Response:
    """Change settings until the next reset."""
    state = sandbox_state(request)
    try:
        body = await _body(request)
        if not isinstance(body, dict):
            raise TypeError("expected a JSON object")
        state.config = state.config.updated(body)
    except (ValueError, TypeError) as exc:
        return _problem(400, str(exc))
    return JSONResponse(state.config.to_json())


async def stats(request: Request) -> Response:
    """Counters and the request log."""
    state = sandbox_state(request)
    return JSONResponse(
        {
            "tokens_issued": state.tokens_issued,
            "active_tokens": len(state.tokens),
            "streams_opened": state.streams_opened,
            "dictations_opened": state.dictations_opened,
            "in_flight": state.in_flight,
            "requests": [asdict(r) for r in state.requests],
        }
    )


async def reset(request: Request) -> Response:
    """Let calls in progress finish (up to 5 s), then forget all but tokens."""
    state = sandbox_state(request)
    await state.settle()
    state.reset()
    return Response(status_code=204)


async def health(request: Request) -> Response:
    """Liveness."""
    return JSONResponse({"status": "ok"})


routes = [
    Route("/_sandbox/billed", billed, methods=["GET"]),
    Route("/_sandbox/faults", get_faults, methods=["GET"]),
    Route("/_sandbox/faults", add_faults, methods=["POST"]),
    Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
    Route("/_sandbox/config", get_config, methods=["GET"]),
    Route("/_sandbox/config", update_config, methods=["PATCH", "POST"]),
    Route("/_sandbox/stats", stats, methods=["GET"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/health", health, methods=["GET"]),
]
