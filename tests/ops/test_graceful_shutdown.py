"""SIGTERM to `python -m service serve` under load: what was accepted is answered.

A real process on a real socket. Three requests are provably in flight when the
signal arrives (their headers sent with `Expect: 100-continue`, the server's
`100 Continue` read, so the app is reading their bodies; the bodies follow after
the signal); concurrent clients keep sending mutations until the server stops
taking connections. None of the answers is a 5xx, the in-flight requests get
their normal answer, and every mutation answered with success is stored.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bench import processes
from service.db.models import Interaction, UsageRecord
from service.db.session import Database
from tests.fixtures.app import make_key
from tests.fixtures.operations import REGISTER, TRANSCRIPT

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLIENTS = 6
PER_CLIENT = 300  # bounded: each client stops at the first refused connection
IN_FLIGHT = 3
BEFORE_SIGNAL = 40  # successful mutations before SIGTERM


@dataclass
class Tally:
    """What the clients saw."""

    statuses: list[int] = field(default_factory=list)
    interactions: set[str] = field(default_factory=set)
    transcripts: set[str] = field(default_factory=set)
    after_signal: int = 0
    dropped: int = 0
    signalled: bool = False
    enough: asyncio.Event = field(default_factory=asyncio.Event)


async def _post(http: httpx.AsyncClient, tally: Tally, body: object) -> bool:
    """One mutation; True when it was answered with success."""
    response = await http.post("/graphql", json=body)
    tally.statuses.append(response.status_code)
    if tally.signalled:
        tally.after_signal += 1
    payload = response.json()
    return response.status_code == 200 and not payload.get("errors")


async def _client(url: str, key: str, number: int, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    # A new connection per request (Connection: close), as many clients behind a
    # load balancer would open them, so requests arrive while the listener closes.
    for i in range(PER_CLIENT):
        interaction = f"shutdown-{number}-{i}"
        try:
            async with httpx.AsyncClient(
                base_url=url, headers={**headers, "Connection": "close"}, timeout=60
            ) as http:
                if not await _post(
                    http,
                    tally,
                    {
                        "query": REGISTER,
                        "variables": {"i": interaction, "t": "t-sd", "u": f"u{number}"},
                    },
                ):
                    continue
                tally.interactions.add(interaction)
            async with httpx.AsyncClient(
                base_url=url, headers={**headers, "Connection": "close"}, timeout=60
            ) as http:
                transcript = f"tr-{interaction}"
                if await _post(
                    http,
                    tally,
                    {
                        "query": TRANSCRIPT,
                        "variables": {"i": interaction, "x": transcript, "c": "1.25"},
                    },
                ):
                    tally.transcripts.add(transcript)
        except httpx.ConnectError:
            return  # the listener is closed: the server is going away
        except httpx.TransportError:
            # Connected while the listener closed: never read by the app (counted).
            tally.dropped += 1
        if len(tally.interactions) >= BEFORE_SIGNAL:
            tally.enough.set()


async def _start_slow_request(
    port: int, key: str, interaction: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Headers sent, the app reading the body (100 Continue); the body kept back."""
    body = json.dumps(
        {"query": REGISTER, "variables": {"i": interaction, "t": "t-sd", "u": "slow"}}
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "POST /graphql HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    line = await reader.readline()
    assert line.startswith(b"HTTP/1.1 100"), line
    assert await reader.readline() == b"\r\n"
    return reader, writer, body


async def _finish_slow_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[int, dict[str, object]]:
    writer.write(body)
    await writer.drain()
    status_line = await reader.readline()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    payload = await reader.readexactly(int(headers["content-length"]))
    writer.close()
    return int(status_line.split()[1]), json.loads(payload)


async def test_sigterm_under_load_answers_what_was_accepted(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    key = await make_key(db, "admin")
    env = processes.environment(DATABASE_URL=database_url)
    log = tmp_path / "serve.log"
    async with processes.serve(env, log) as api:
        assert api.url is not None
        port = int(api.url.rsplit(":", 1)[1])
        tally = Tally()
        clients = [
            asyncio.create_task(_client(api.url, key, n, tally)) for n in range(CLIENTS)
        ]
        await asyncio.wait_for(tally.enough.wait(), 120)
        slow = [
            await _start_slow_request(port, key, f"slow-{n}") for n in range(IN_FLIGHT)
        ]
        tally.signalled = True
        api.signal(signal.SIGTERM)
        answers = [await _finish_slow_request(*request) for request in slow]
        await asyncio.wait_for(asyncio.gather(*clients), 120)
        exit_code = await asyncio.wait_for(api.process.wait(), 60)
    output = log.read_text(errors="replace")
    # It stopped by itself (uvicorn re-raises the SIGTERM it handled), cleanly.
    assert exit_code in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output
    # The requests in flight at the signal got their normal answer.
    for status, payload in answers:
        assert status == 200, payload
        assert "errors" not in payload, payload
    # No accepted request was answered with a 5xx.
    assert tally.statuses, "no request was answered"
    assert all(status < 500 for status in tally.statuses), sorted(set(tally.statuses))
    # Every mutation answered with success is stored.
    async with db.read() as session:
        stored = set((await session.scalars(select(Interaction.id))).all())
        records = set((await session.scalars(select(UsageRecord.external_id))).all())
    assert tally.interactions | {f"slow-{n}" for n in range(IN_FLIGHT)} <= stored
    assert tally.transcripts <= records


async def test_shutdown_waits_no_longer_than_its_timeout(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    # A request whose body never comes, with the body timeouts far away: the
    # process still exits after SHUTDOWN_TIMEOUT_SECONDS (without it uvicorn waits
    # for that request forever). uvicorn cancels the request; having no answer
    # started, it answers 500 itself (README: Graceful shutdown).
    key = await make_key(db, "admin")
    env = processes.environment(
        DATABASE_URL=database_url,
        SHUTDOWN_TIMEOUT_SECONDS="1",
        BODY_READ_TIMEOUT_SECONDS="3600",
        REQUEST_TIMEOUT_SECONDS="3600",
    )
    log = tmp_path / "serve.log"
    async with processes.serve(env, log) as api:
        assert api.url is not None
        port = int(api.url.rsplit(":", 1)[1])
        reader, writer, _body = await _start_slow_request(port, key, "never")
        api.signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(api.process.wait(), 60)
        answer = await reader.read()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 500 "), answer
        writer.close()
    assert exit_code in (0, -signal.SIGTERM), log.read_text(errors="replace")
    async with db.read() as session:
        assert await session.get(Interaction, "never") is None
