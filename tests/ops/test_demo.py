"""`python -m service demo` against a real `serve`: totals through GraphQL."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bench import processes
from bench.config import ROOT
from service.db.session import Database
from service.demo import REFUSED, TENANTS, plan
from tests.fixtures.app import make_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOTALS = """
query($t: ID!) {
  tenant(id: $t) {
    credits { total stream transcript document facts }
    users(first: 100) { totalCount nodes { id credits { total } } }
    budgets { period limit user { id } }
  }
  tenants { totalCount }
}"""


async def _demo(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "demo",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    return await process.wait(), output.decode(errors="replace")


async def _totals(http: httpx.AsyncClient) -> list[dict[str, object]]:
    answers = []
    for tenant in TENANTS:
        response = await http.post(
            "/graphql", json={"query": TOTALS, "variables": {"t": tenant}}
        )
        body = response.json()
        assert "errors" not in body, body
        answers.append(body["data"])
    return answers


async def test_demo_fills_an_empty_ledger_through_the_api(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    key = await make_key(db, "admin")
    env = processes.environment(DATABASE_URL=database_url)
    sample = plan()
    async with (
        processes.serve(env, tmp_path / "serve.log") as api,
        httpx.AsyncClient(
            base_url=api.url or "", headers={"Authorization": f"Bearer {key}"}
        ) as http,
    ):
        assert api.url is not None
        status, output = await _demo("--url", api.url, "--key", key, env=env)
        assert status == 0, output
        answers = await _totals(http)
        for tenant, data in zip(TENANTS, answers, strict=True):
            assert data["tenants"] == {"totalCount": len(TENANTS)}
            found = data["tenant"]
            assert isinstance(found, dict)
            credits = found["credits"]
            assert Decimal(credits["total"]) == sample.credits(tenant), tenant
            for source in ("stream", "transcript", "document", "facts"):
                expected = sum(
                    (
                        r.credits
                        for r in sample.records
                        if r.tenant_id == tenant and r.source == source.upper()
                    ),
                    Decimal(0),
                )
                assert Decimal(credits[source]) == expected, (tenant, source)
            users = {
                u["id"]: Decimal(u["credits"]["total"]) for u in found["users"]["nodes"]
            }
            assert users == {
                user: sample.credits(tenant, user) for user in TENANTS[tenant]
            }
            assert sorted(
                (b["period"], b["user"] is not None) for b in found["budgets"]
            ) == [("MONTH", False), ("WEEK", True)]
        # The plan spreads the records over the last 60 days, today to 59 days ago.
        assert {r.age.days for r in sample.records} >= {0, 59}

        # Again, over HTTP and in-process: refused, nothing written.
        status, output = await _demo("--url", api.url, "--key", key, env=env)
        assert status == REFUSED, output
        status, output = await _demo(env=env)
        assert status == REFUSED, output
        assert "nothing was written" in output
        assert await _totals(http) == answers
