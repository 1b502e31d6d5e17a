"""API keys: the CLI, hashed storage, revocation, and every way to be refused (401)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from service.auth import keys
from service.db.base import Base
from service.db.models import ApiKey
from service.db.session import Database
from tests.auth.helpers import TENANTS, data, new_key, only_code, post

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]


async def cli(database_url: str, *args: str) -> tuple[int, str, str]:
    """Run `python -m service keys ...`; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "keys",
        *args,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def every_stored_value(db: Database) -> list[str]:
    """Every column value of every row of every table, as text."""
    values: list[str] = []
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                values.extend(str(v) for v in row)
    return values


async def found_in_database_files(database_url: str, *needles: str) -> list[str]:
    """Which needles occur in the raw bytes of the SQLite file and its WAL.

    Read by another process: opening and closing the file here would drop the
    POSIX locks that this process's SQLite connections hold on it.
    """
    if not database_url.startswith("sqlite"):
        return []
    path = Path(database_url.split("///", 1)[1])
    script = (
        "import sys, pathlib\n"
        "files = [pathlib.Path(p) for p in sys.argv[1:]]\n"
        "data = b''.join(f.read_bytes() for f in files if f.exists())\n"
        "for line in sys.stdin.read().split():\n"
        "    print(line) if line.encode() in data else None\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(path),
        str(path.with_name(path.name + "-wal")),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate("\n".join(needles).encode())
    assert process.returncode == 0
    return out.decode().split()


async def test_cli_create_list_revoke(
    database_url: str, db: Database, api: httpx.AsyncClient
) -> None:
    code, out, err = await cli(
        database_url, "create", "--role", "reader", "--tenant", "t1", "--name", "bi"
    )
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    _, prefix, secret = key.split("_", 2)
    assert key.startswith("cul_")
    assert len(secret) >= 40

    # Only a hash is stored: neither the key nor its secret part is anywhere.
    async with db.read() as session:
        row = (await session.execute(select(ApiKey))).scalar_one()
    assert (row.prefix, row.role, row.tenant_id, row.name) == (
        prefix,
        "reader",
        "t1",
        "bi",
    )
    assert row.secret_hash != key
    assert len(row.secret_hash) == 64
    stored = await every_stored_value(db)
    assert not [v for v in stored if key in v or secret in v]
    found = await found_in_database_files(database_url, key, secret, prefix)
    assert key not in found
    assert secret not in found
    if database_url.startswith("sqlite"):
        assert prefix in found  # the scan does see what is stored

    # The key works, with the role and tenant it was created with.
    body = await data(api, TENANTS, key=key)
    assert body["tenants"] == {"totalCount": 0, "nodes": []}

    # `keys list` shows it (never its secret).
    code, out, err = await cli(database_url, "list")
    assert code == 0, err
    (line,) = out.strip().splitlines()
    fields = line.split("\t")
    assert fields[0] == prefix
    assert fields[2:5] == ["reader", "t1", "active"]
    assert secret not in out
    assert key not in out
    assert secret not in err

    # Revoked by prefix: 401 from then on, and `keys list` says so.
    code, _, err = await cli(database_url, "revoke", prefix)
    assert code == 0, err
    response = await post(api, TENANTS, key=key)
    assert response.status_code == 401
    assert only_code(response.json()) == "UNAUTHENTICATED"
    code, out, _ = await cli(database_url, "list")
    assert "\trevoked " in out
    # Revoking again (or an unknown key) fails.
    assert (await cli(database_url, "revoke", prefix))[0] == 1
    assert (await cli(database_url, "revoke", "nosuchprefix"))[0] == 1


async def test_cli_revokes_by_id_and_refuses_bad_input(
    database_url: str, db: Database, api: httpx.AsyncClient
) -> None:
    key_id, key = await new_key(db, "admin")
    assert (await post(api, TENANTS, key=key)).status_code == 200
    code, _, err = await cli(database_url, "revoke", str(key_id))
    assert code == 0, err
    assert (await post(api, TENANTS, key=key)).status_code == 401
    code, out, _ = await cli(
        database_url, "create", "--role", "ingest", "--tenant", " "
    )
    assert code == 2
    assert not out
    code, out, _ = await cli(database_url, "create", "--role", "root")
    assert code != 0
    assert not out


BAD_AUTHORIZATION = [
    pytest.param(None, id="no-header"),
    pytest.param("", id="empty-header"),
    pytest.param("Bearer", id="scheme-only"),
    pytest.param("Basic dXNlcjpwYXNz", id="basic-auth"),
    pytest.param("Token {key}", id="other-scheme"),
    pytest.param("{key}", id="no-scheme"),
    pytest.param("Bearer cul_0123456789ab", id="too-few-parts"),
    pytest.param("Bearer abc_{prefix}_{secret}", id="wrong-key-kind"),
    pytest.param("Bearer cul_000000000000_{secret}", id="unknown-prefix"),
    pytest.param("Bearer cul_{prefix}_x{secret}", id="wrong-secret"),
    pytest.param("Bearer cul_{prefix}_", id="empty-secret"),
    pytest.param("Bearer {key}x", id="key-with-suffix"),
    pytest.param("Bearer cul_%_%", id="sql-wildcards"),
    pytest.param("Bearer cul_' OR '1'='1_x", id="sql-injection"),
    pytest.param("Bearer cul_" + "a" * 5000 + "_b", id="very-long"),
]


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION)
async def test_missing_unknown_or_malformed_key_is_401(
    db: Database, api: httpx.AsyncClient, authorization: str | None
) -> None:
    _, key = await new_key(db, "admin")
    _, prefix, secret = key.split("_", 2)
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            key=key, prefix=prefix, secret=secret
        )
    response = await api.post("/graphql", json={"query": TENANTS}, headers=headers)
    assert response.status_code == 401
    assert only_code(response.json()) == "UNAUTHENTICATED"
    assert response.json()["data"] is None
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert secret not in response.text


async def test_non_ascii_key_bytes_are_401(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    _, prefix, secret = key.split("_", 2)
    for raw in (
        b"Bearer cul_\xe9\xe9_x",
        f"Bearer cul_{prefix}_\xe9{secret}".encode("latin-1"),
    ):
        response = await api.post(
            "/graphql", json={"query": TENANTS}, headers=[(b"authorization", raw)]
        )
        assert response.status_code == 401, response.text
        assert only_code(response.json()) == "UNAUTHENTICATED"


async def test_the_scheme_is_case_insensitive(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "reader")
    response = await api.post(
        "/graphql", json={"query": TENANTS}, headers={"Authorization": f"bearer {key}"}
    )
    assert response.status_code == 200
    assert "errors" not in response.json()


async def test_revoked_key_is_401_even_for_introspection(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    async with db.write() as session:
        assert await keys.revoke_key(session, key.split("_")[1])
    response = await post(api, "{ __schema { queryType { name } } }", key=key)
    assert response.status_code == 401
    assert only_code(response.json()) == "UNAUTHENTICATED"
