"""Keycloak-style token endpoint and the bearer-token checks of REST and WS."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from corti_sandbox._json import corti_error
from corti_sandbox.state import SandboxState, TokenRecord


class Refusal(Exception):
    """A request refused before reaching its handler; carries the response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def sandbox_state(conn: HTTPConnection) -> SandboxState:
    """The sandbox state of the app serving this request."""
    state: SandboxState = conn.app.state.sandbox
    return state


async def token_endpoint(request: Request) -> Response:
    """`POST /realms/{tenant}/protocol/openid-connect/token` (client_credentials)."""
    state = sandbox_state(request)
    tenant = request.path_params["tenant"]
    form = await request.form()
    grant_type = str(form.get("grant_type") or "")
    client_id = str(form.get("client_id") or "")
    client_secret = str(form.get("client_secret") or "")
    basic = _basic_credentials(request.headers.get("Authorization", ""))
    if basic and not client_id:
        client_id, client_secret = basic
    if grant_type != "client_credentials":
        return _oauth_error(
            400,
            "unsupported_grant_type",
            "Unsupported grant_type (sandbox: client_credentials)",
        )
    config = state.config
    if not client_id or (
        config.client_id is not None and client_id != config.client_id
    ):
        return _oauth_error(
            401, "invalid_client", "Invalid client or Invalid client credentials"
        )
    if not client_secret or (
        config.client_secret is not None and client_secret != config.client_secret
    ):
        return _oauth_error(
            401, "unauthorized_client", "Invalid client or Invalid client credentials"
        )
    issuer = f"{request.url.scheme}://{request.url.netloc}/realms/{tenant}"
    token = state.issue_token(tenant, client_id, issuer)
    return JSONResponse(
        {
            "access_token": token,
            "expires_in": config.token_expires_in,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile openid email",
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def require_rest_auth(request: Request) -> TokenRecord:
    """Check `Authorization: Bearer` and `Tenant-Name`; raise `Refusal` if bad."""
    header = request.headers.get("Authorization", "")
    record = _check_bearer(sandbox_state(request), header)
    tenant = request.headers.get("Tenant-Name")
    if not tenant:
        raise Refusal(corti_error(400, "The Tenant-Name header is required"))
    if tenant != record.tenant:
        raise Refusal(corti_error(403, "The token was not issued for this tenant"))
    return record


def require_ws_auth(conn: HTTPConnection) -> TokenRecord:
    """Check the `token` and `tenant-name` query parameters of a WS upgrade."""
    raw = conn.query_params.get("token") or conn.headers.get("Authorization", "")
    record = _check_bearer(sandbox_state(conn), raw)
    tenant = conn.query_params.get("tenant-name")
    if not tenant:
        raise Refusal(corti_error(400, "The tenant-name query parameter is required"))
    if tenant != record.tenant:
        raise Refusal(corti_error(403, "The token was not issued for this tenant"))
    return record


def _check_bearer(state: SandboxState, header: str) -> TokenRecord:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(_unauthorized('Bearer realm="corti"'))
    record = state.check_token(token.strip())
    if record is None:
        raise Refusal(
            _unauthorized(
                'Bearer error="invalid_token", error_description="Token is not active"'
            )
        )
    return record


def _unauthorized(challenge: str) -> Response:
    # Corti answers 401 with no body; the reason is in WWW-Authenticate.
    return Response(status_code=401, headers={"WWW-Authenticate": challenge})


def _oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status
    )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)
