"""`python -m service demo`: fill an empty ledger with two months of sample usage.

Everything goes through the public GraphQL API: `registerInteraction`,
`ingestUsage` and `setBudget`, as a Corti integration would send them. Two ways:

- `--url URL --key KEY`: over HTTP to a running `serve` (KEY an admin key);
- neither: in-process, the app served over httpx's ASGI transport against
  DATABASE_URL (its lifespan started as `serve` starts it), with an admin key
  made for the run and revoked after it.

The sample is deterministic: the same seed gives the same tenants, users,
interactions, records and credits; only `createdAt` moves with the clock (the
last 60 days before now). A database that already has a tenant is refused
(exit status 3) and nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

REFUSED = 3
DAYS = 60
BATCH = 500

TENANTS: dict[str, list[str]] = {
    "northwind-clinic": ["dr-hansen", "dr-okafor", "nurse-lind", "dr-moreau"],
    "bluebay-health": ["dr-silva", "dr-nakamura", "dr-berg"],
    "fjord-medical": ["dr-jensen", "dr-weber", "scribe-ali", "dr-kowalski", "dr-rossi"],
}
# Interactions per user over the 60 days (busy and quiet users).
INTERACTIONS = (4, 8, 14, 22)

REGISTER = """
mutation($in: RegisterInteractionInput!) { registerInteraction(input: $in) { id } }
"""
INGEST = """
mutation($r: [UsageRecordInput!]!) { ingestUsage(records: $r) { accepted duplicates } }
"""
SET_BUDGET = """
mutation($in: SetBudgetInput!) { setBudget(input: $in) { id } }
"""
TENANTS_QUERY = "query { tenants(first: 1) { totalCount } }"


@dataclass(frozen=True)
class Record:
    """One usage record as `ingestUsage` takes it."""

    source: str
    external_id: str
    credits: Decimal
    age: timedelta  # before now
    tenant_id: str
    user_id: str
    interaction_id: str | None

    def variables(self, now: datetime) -> dict[str, Any]:
        """The `UsageRecordInput` of this record."""
        value: dict[str, Any] = {
            "source": self.source,
            "externalId": self.external_id,
            "credits": str(self.credits),
            "createdAt": _iso(now - self.age),
        }
        if self.interaction_id is None:
            value |= {"tenantId": self.tenant_id, "userId": self.user_id}
        else:
            value["interactionId"] = self.interaction_id
        return value


@dataclass(frozen=True)
class Interaction:
    """One Corti interaction of a user."""

    id: str
    tenant_id: str
    user_id: str
    age: timedelta


@dataclass
class Plan:
    """What the demo sends, fixed by its seed."""

    interactions: list[Interaction] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)

    def credits(self, tenant: str, user: str | None = None) -> Decimal:
        """The credits the plan gives a tenant (or one of its users)."""
        return sum(
            (
                r.credits
                for r in self.records
                if r.tenant_id == tenant and (user is None or r.user_id == user)
            ),
            Decimal(0),
        )


def _credits(rng: random.Random, low: int, high: int) -> Decimal:
    """Credits with up to 4 decimal places, between low and high hundredths."""
    return Decimal(rng.randint(low * 100, high * 100)) / Decimal(10_000)


def plan(seed: int = 2026) -> Plan:
    """The sample ledger for `seed`."""
    rng = random.Random(seed)
    result = Plan()
    for tenant, users in TENANTS.items():
        result.budgets.append(
            {"tenantId": tenant, "period": "MONTH", "limit": "2500", "enforce": False}
        )
        result.budgets.append(
            {
                "tenantId": tenant,
                "userId": users[0],
                "period": "WEEK",
                "limit": "150",
                "thresholds": [80, 100],
            }
        )
        for user in users:
            for n in range(rng.choice(INTERACTIONS)):
                interaction = f"demo-{tenant.split('-')[0]}-{user}-{n:03d}"
                age = timedelta(
                    days=rng.randrange(DAYS),
                    hours=rng.randrange(7, 18),
                    minutes=rng.randrange(60),
                ) + timedelta(hours=1)
                result.interactions.append(Interaction(interaction, tenant, user, age))
                later = age - timedelta(minutes=rng.randrange(5, 40))

                def add(
                    source: str,
                    suffix: str,
                    credits: Decimal,
                    *,
                    bind: bool = True,
                    _tenant: str = tenant,
                    _user: str = user,
                    _id: str = interaction,
                    _age: timedelta = later,
                ) -> None:
                    result.records.append(
                        Record(
                            source,
                            f"{_id}-{suffix}",
                            credits,
                            _age,
                            _tenant,
                            _user,
                            _id if bind else None,
                        )
                    )

                # A consultation: a live stream, often a document, now and then an
                # uploaded recording's transcript; stateless calls beside them.
                add("STREAM", "stream", _credits(rng, 200, 4_000))
                if rng.random() < 0.7:
                    add("DOCUMENT", "document", _credits(rng, 100, 900))
                if rng.random() < 0.25:
                    add("TRANSCRIPT", "transcript", _credits(rng, 300, 2_500))
                if rng.random() < 0.3:
                    add("FACTS", "facts", _credits(rng, 20, 200), bind=False)
                if rng.random() < 0.15:
                    add("CODING", "coding", _credits(rng, 50, 300), bind=False)
                if rng.random() < 0.2:
                    add("DICTATION", "dictation", _credits(rng, 100, 1_500), bind=False)
    return result


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class DemoError(Exception):
    """The API refused something the demo sent."""


async def _call(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables or {}}
    )
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise DemoError(f"HTTP {response.status_code}: {response.text[:200]}") from None
    if body.get("errors") or response.status_code != 200:
        raise DemoError(f"HTTP {response.status_code}: {body.get('errors')}")
    data: dict[str, Any] = body["data"]
    return data


async def fill(http: httpx.AsyncClient, seed: int = 2026) -> Plan | None:
    """Send the plan; None (nothing sent) when the ledger already has a tenant."""
    if (await _call(http, TENANTS_QUERY))["tenants"]["totalCount"]:
        return None
    sample = plan(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    for interaction in sample.interactions:
        await _call(
            http,
            REGISTER,
            {
                "in": {
                    "interactionId": interaction.id,
                    "tenantId": interaction.tenant_id,
                    "userId": interaction.user_id,
                    "createdAt": _iso(now - interaction.age),
                }
            },
        )
    for start in range(0, len(sample.records), BATCH):
        batch = [r.variables(now) for r in sample.records[start : start + BATCH]]
        await _call(http, INGEST, {"r": batch})
    for budget in sample.budgets:
        await _call(http, SET_BUDGET, {"in": budget})
    return sample


@asynccontextmanager
async def _in_process() -> AsyncIterator[httpx.AsyncClient]:
    """The app over the ASGI transport, its lifespan running, with a run's key."""
    from service.app import create_app
    from service.auth import keys
    from service.auth.principal import Role
    from service.config import get_settings
    from service.db.session import Database
    from service.uow import unit_of_work

    settings = get_settings()
    db = Database.from_url(settings.database_url)
    try:
        async with unit_of_work(db) as uow:
            info, plain = await keys.create_key(
                uow.session, Role.ADMIN, None, "demo (in-process, revoked after)"
            )
        app = create_app(settings)
        try:
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://demo",
                    headers={"Authorization": f"Bearer {plain}"},
                    timeout=120,
                ) as http,
            ):
                yield http
        finally:
            async with unit_of_work(db) as uow:
                await keys.revoke_key(uow.session, str(info.id))
    finally:
        await db.dispose()


@asynccontextmanager
async def _over_http(url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    ) as http:
        yield http


async def run(url: str | None, key: str | None, seed: int) -> int:
    """The command; its exit status."""
    client = _over_http(url, key or "") if url else _in_process()
    try:
        async with client as http:
            sample = await fill(http, seed)
    except (DemoError, httpx.HTTPError) as error:
        sys.stderr.write(f"demo: {error}\n")
        return 1
    if sample is None:
        sys.stderr.write(
            "demo: the ledger already has tenants; the demo fills only an empty "
            "database, nothing was written\n"
        )
        return REFUSED
    users = {(i.tenant_id, i.user_id) for i in sample.interactions}
    sys.stdout.write(
        f"demo: {len(TENANTS)} tenants, {len(users)} users, "
        f"{len(sample.interactions)} interactions, {len(sample.records)} usage "
        f"records over the last {DAYS} days, {len(sample.budgets)} budgets\n"
    )
    for tenant in TENANTS:
        sys.stdout.write(f"  {tenant}: {sample.credits(tenant)} credits\n")
    return 0


def main(argv: Sequence[str]) -> None:
    """`python -m service demo [--url URL --key KEY] [--seed N]`."""
    parser = argparse.ArgumentParser(prog="python -m service demo", description=__doc__)
    parser.add_argument("--url", help="a running service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", help="an admin API key (with --url)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if args.url and not args.key:
        parser.error("--url needs --key (an admin key)")
    raise SystemExit(asyncio.run(run(args.url, args.key, args.seed)))
