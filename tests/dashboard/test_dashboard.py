"""/dashboard and /graphql in headless Chromium against a seeded server.

Needs Debian's `chromium` (.ci/run installs it). Screenshots go to the test's
own tmp_path; set DASHBOARD_SCREENSHOT=docs/dashboard.png to also refresh the
README's picture.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.dashboard.browser import Browser, Page, chromium_path, launch
from tests.fixtures.app import GraphQLClient, Server
from tests.fixtures.operations import TRANSCRIPT
from tests.fixtures.seed import seed
from tests.live.client import subscribed

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "service" / "dashboard" / "static"
FRONTEND = ROOT / "frontend"


def text_of(test_id: str) -> str:
    return f"document.querySelector('[data-testid={test_id}]').textContent"


def table(test_id: str) -> str:
    """JS: the rows of a table as lists of cell texts."""
    return (
        f"Array.from(document.querySelectorAll('[data-testid={test_id}] tbody tr'))"
        ".map(r => Array.from(r.cells).map(c => c.textContent))"
    )


@pytest_asyncio.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    binary = chromium_path()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is missing: .ci/run installs Debian's chromium package"
            )
        pytest.skip("chromium is not installed (apt-get install chromium)")
    async with launch(binary, tmp_path_factory.mktemp("chromium-profile")) as running:
        yield running


def assert_clean(page: Page, origin: str) -> None:
    """No console error, and nothing loaded from another origin (no CDN)."""
    assert page.console == [], page.console
    foreign = [
        url for url in page.requests if not url.startswith((origin, "data:", "about:"))
    ]
    assert foreign == []


async def test_dashboard_and_graphiql(
    browser: Browser, server: Server, gql: GraphQLClient, admin_key: str, tmp_path: Path
) -> None:
    await seed(gql)
    # Usage attributed to a user directly (no interaction): in the cards, the
    # user's row and the charts, in no interaction's row.
    await gql.data(
        """mutation { recordFactsUsage(input: {requestId: "req-1",
        creditsConsumed: "0.5", tenantId: "t1", userId: "u1"}) { id } }"""
    )
    page = await browser.new_page(height=1000)
    await page.goto(f"{server.url}/dashboard")
    await page.type_into("#key", admin_key)
    await page.click("#connect")
    await page.wait_for("document.body.dataset.loaded")
    assert await page.evaluate("document.getElementById('tenant').value") == "t1"
    assert await page.evaluate(
        "Array.from(document.getElementById('tenant').options).map(o => o.value)"
    ) == ["t1", "t2"]
    cards = {
        name: await page.evaluate(text_of(name))
        for name in (
            "total",
            "stream",
            "transcript",
            "document",
            "facts",
            "coding",
            "dictation",
            "records",
        )
    }
    assert cards == {
        "total": "2.25",
        "stream": "1.25",
        "transcript": "0.3",
        "document": "0.2",
        "facts": "0.5",
        "coding": "0",
        "dictation": "0",
        "records": "6",
    }
    assert await page.evaluate(table("users")) == [
        ["u1", "2.05", "4"],
        ["u2", "0.2", "2"],
    ]
    interactions = await page.evaluate(table("interactions"))
    assert [(row[0], row[1], row[-2], row[-1]) for row in interactions] == [
        ("int-b", "u2", "0.2", "2"),
        ("int-a", "u1", "1.55", "3"),
    ]
    assert await page.evaluate("sessionStorage.getItem('cortiUsageKey')") == admin_key

    # Live: a new record shows up and the totals follow, without a reload.
    await page.wait_for("document.getElementById('live').dataset.state === 'live'")
    await subscribed("t1")
    await gql.data(TRANSCRIPT, {"i": "int-a", "x": "tr-live", "c": "0.05"})
    await page.wait_for(f"{text_of('total')} === '2.3'", seconds=5)
    events = await page.evaluate(text_of("events"))
    assert "tr-live" in events
    assert await page.evaluate(text_of("transcript")) == "0.35"
    shot = tmp_path / "dashboard.png"
    await page.screenshot(shot)
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shot, ROOT / target)
    assert_clean(page, server.url)

    # GraphiQL, same tab: the key from the dashboard fills the headers.
    await page.goto(f"{server.url}/graphql")
    await page.wait_for("!!document.querySelector('.graphiql-execute-button')")
    await page.click(".graphiql-execute-button")
    try:
        result = await page.wait_for(
            "(document.querySelector('.result-window') || {}).textContent"
            " && document.querySelector('.result-window').textContent.includes('tenants')"
            " && document.querySelector('.result-window').textContent",
            seconds=10,
        )
    finally:
        await page.screenshot(tmp_path / "graphiql.png")
    assert '"t1"' in result
    assert_clean(page, server.url)


async def test_a_bad_key_is_reported_on_the_page(
    browser: Browser, server: Server
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/dashboard")
    await page.type_into("#key", "cul_wrong_key")
    await page.click("#connect")
    message = await page.wait_for(
        "document.getElementById('message').textContent.includes('refused')"
        " && document.getElementById('message').textContent"
    )
    assert "unknown or revoked API key" in message
    assert await page.evaluate("document.getElementById('main').hidden") is True
    assert await page.evaluate("sessionStorage.getItem('cortiUsageKey')") is None
    # The 401 itself is logged by Chromium as a failed resource load; nothing else.
    assert all("401" in entry.text for entry in page.console), page.console


async def test_pages_send_security_headers(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for path, headers in (
            ("/dashboard", {}),
            ("/graphql", {"Accept": "text/html"}),
        ):
            response = await http.get(path, headers=headers)
            assert response.status_code == 200
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "unpkg" not in response.text
        assert (await http.get("/static/vendor/graphiql.min.js")).status_code == 200


async def test_built_assets_match_the_frontend_sources() -> None:
    """service/dashboard/static was built from the committed frontend/ sources."""
    inputs = [
        FRONTEND / name
        for name in ("build.mjs", "package.json", "package-lock.json", "tsconfig.json")
    ]
    inputs += [p for p in (FRONTEND / "src").rglob("*") if p.is_file()]
    digest = hashlib.sha256()
    for path in sorted(p.relative_to(FRONTEND).as_posix() for p in inputs):
        digest.update(path.encode() + b"\0")
        digest.update((FRONTEND / path).read_bytes())
        digest.update(b"\0")
    info = json.loads((STATIC / "build-info.json").read_text())
    assert info["sources"] == digest.hexdigest(), (
        "frontend/ changed: run `cd frontend && npm ci && npm run build`"
    )


SET_BUDGET = """
mutation($i: SetBudgetInput!) { setBudget(input: $i) { id } }
"""


async def test_budgets_panel(
    browser: Browser, server: Server, gql: GraphQLClient, admin_key: str
) -> None:
    await seed(gql)  # t1: u1 1.55 (within the last 3 days), u2 0.2
    for given in (
        {"tenantId": "t1", "period": "MONTH", "limit": "100", "thresholds": [1, 90]},
        {"tenantId": "t1", "userId": "u1", "period": "MONTH", "limit": "1"},
        {"tenantId": "t1", "userId": "u2", "period": "MONTH", "limit": "2"},
    ):
        await gql.data(SET_BUDGET, {"i": given})
    page = await browser.new_page(height=1400)
    await page.goto(f"{server.url}/dashboard")
    await page.type_into("#key", admin_key)
    await page.click("#connect")
    await page.wait_for("document.body.dataset.budgets === '3'")
    gauges = await page.evaluate(
        "Array.from(document.querySelectorAll('[data-testid=budgets] li'))"
        ".map(li => [li.querySelector('.budget-title').textContent,"
        " li.querySelectorAll('.mark').length, li.querySelectorAll('.mark.crossed').length,"
        " li.querySelector('[role=meter]').getAttribute('aria-valuenow')])"
    )
    # This month's usage depends on the day: read the statuses the API gives.
    statuses = await gql.data(
        '{ tenant(id: "t1") { budgets { user { id } thresholds status { percentUsed } } } }'
    )
    expected = [
        [
            f"{b['user']['id'] if b['user'] else 'whole tenant'} · month",
            len(b["thresholds"]),
            sum(1 for t in b["thresholds"] if float(b["status"]["percentUsed"]) >= t),
            b["status"]["percentUsed"],
        ]
        for b in statuses["tenant"]["budgets"]
    ]
    assert gauges == expected
    nearest = await page.evaluate(table("nearest"))
    assert [row[0] for row in nearest] == sorted(
        [r[0] for r in nearest],
        key=lambda user: (
            -float(
                next(
                    b["status"]["percentUsed"]
                    for b in statuses["tenant"]["budgets"]
                    if b["user"] and b["user"]["id"] == user
                )
            )
        ),
    )
    assert {row[0] for row in nearest} <= {"u1", "u2"}
    projected = await page.evaluate(text_of("budget-projected"))
    assert projected.startswith("projected ")
    assert_clean(page, server.url)
