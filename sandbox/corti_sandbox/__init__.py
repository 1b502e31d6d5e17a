"""Corti sandbox: a local stand-in speaking Corti's token, REST, /streams and /transcribe protocol.

Run it with `python -m service corti-sandbox` (or `python -m corti_sandbox`):
tokens at `/realms/{tenant}/protocol/openid-connect/token`, REST under `/v2`,
websockets under `/audio-bridge/v2`. Point a client at it with
`CORTI_BASE_URL=http://HOST:PORT/v2`, `CORTI_WSS_URL=ws://HOST:PORT/audio-bridge/v2`
and `CORTI_LOGIN_URL=http://HOST:PORT/realms`. Any non-empty client id and secret
are accepted unless `--client-id`/`--client-secret` are given.

Credits are deterministic. Audio is taken to be 16 kHz 16-bit mono PCM, so
32 000 bytes make one second (the sandbox never decodes audio):

- transcript: 0.01 credits per started second of the recording,
  `0.01 * ceil(bytes / 32000)`;
- stream: 0.02 credits per started second of audio received before `end`,
  `0.02 * ceil(bytes / 32000)`; `delta_usage` after every full second carries
  `0.02 * floor(bytes / 32000)`; a stream closed without `end` is not billed;
- document: 0.10 credits plus 0.01 per started 100 characters of context text
  (string data, transcript text, fact texts), `0.10 + 0.01 * ceil(chars / 100)`,
  for guided documents (`POST /v2/documents/`) too;
- extract-facts: `0.05 + 0.01 * ceil(chars / 100)`; coding: `0.10 * systems +
  0.01 * ceil(chars / 100)` (tools.py);
- dictation (`/transcribe`): `0.015 * ceil(bytes / 32000)`, billed under its
  `sessionId` when `usage` is sent; `delta_usage` after every full second
  (transcribe.py).

Every billed entity lands once in the ledger at `GET /_sandbox/billed`, at the
moment Corti would bill it (a transcript still processing is already billed,
though its answer shows 0 credits until it completes). Test-only control and
fault switches are described in `control.py` and `faults.py`. The sandbox keeps
everything in memory and has no authentication on `/_sandbox/`: bind it to
loopback only.
"""

from __future__ import annotations

import argparse

from corti_sandbox.app import create_sandbox_app
from corti_sandbox.state import SandboxConfig

__all__ = ["SandboxConfig", "create_sandbox_app", "run_sandbox"]


def run_sandbox(argv: list[str]) -> None:
    """Parse `--host`, `--port`, `--client-id`, `--client-secret` and serve."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="corti-sandbox", description="Local stand-in for the Corti API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", default=None, help="accept only this client id")
    parser.add_argument("--client-secret", default=None, help="accept only this secret")
    parser.add_argument(
        "--token-expires-in", type=int, default=300, help="token lifetime in seconds"
    )
    args = parser.parse_args(argv)
    app = create_sandbox_app(
        SandboxConfig(
            client_id=args.client_id,
            client_secret=args.client_secret,
            token_expires_in=args.token_expires_in,
        )
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        lifespan="off",
        log_level="info",
    )
