"""The dashboard query through the API beside hand-written SQL for the same answer.

The question: for one tenant and the 90 local days before 2026-11-20
(Europe/Copenhagen), its credits (total, per source, record count), its 90 DAY
buckets, its 20 users with the most credits in the range (and how many users
have usage in it), each with their credits in the range and their 10
interactions with the newest usage in the range, each with its credits in the
range. Both answers are compared field by field once per tenant, and the
API's totals against the generator's own sums.

Measured sequentially (one request at a time), API and SQL alternating, after
warm-up requests; the hand-written SQL runs in this process through
service.db.session.Database (same driver, pool and SQLite functions).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text

from bench.config import ZONE, ZONE_NAME, Target, dashboard_range, iso_local
from bench.http import Connection, GraphQLError, graphql_body, graphql_data
from bench.postgraphile import QUERY as PGL_QUERY
from bench.postgraphile import PostGraphile, comparable
from bench.server import Server, load_average
from bench.stats import latency
from service.db.session import Database
from service.db.timebuckets import edges

WARMUP = 3
TIME_BUDGET_SECONDS = 90  # per tenant: stop early when queries are slow
TOP_USERS = 20
LATEST_INTERACTIONS = 10

QUERY = """
query Dashboard($tenant: ID!, $range: TimeRange!) {
  tenant(id: $tenant) {
    credits(range: $range) { total stream transcript document records }
    usage(range: $range, granularity: DAY, timeZone: "Europe/Copenhagen") {
      start end credits { total }
    }
    users(range: $range, first: 20) {
      totalCount
      nodes {
        id
        credits(range: $range) { total }
        interactions(range: $range, first: 10) {
          nodes { id createdAt credits(range: $range) { total } }
        }
      }
    }
  }
}"""


def variables(tenant: str) -> dict[str, Any]:
    """The operation's variables: the range as a browser in Copenhagen sends it."""
    start, end = dashboard_range()
    return {"tenant": tenant, "range": {"from": iso_local(start), "to": iso_local(end)}}


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_api(data: dict[str, Any]) -> dict[str, Any]:
    """The API's answer in the comparable form."""
    tenant = data["tenant"]
    credits = tenant["credits"]
    return {
        "credits": {
            "total": Decimal(credits["total"]),
            "STREAM": Decimal(credits["stream"]),
            "TRANSCRIPT": Decimal(credits["transcript"]),
            "DOCUMENT": Decimal(credits["document"]),
            "records": credits["records"],
        },
        "buckets": [
            (_instant(b["start"]), _instant(b["end"]), Decimal(b["credits"]["total"]))
            for b in tenant["usage"]
        ],
        "users_total": tenant["users"]["totalCount"],
        "users": [
            (
                u["id"],
                Decimal(u["credits"]["total"]),
                [
                    (i["id"], _instant(i["createdAt"]), Decimal(i["credits"]["total"]))
                    for i in u["interactions"]["nodes"]
                ],
            )
            for u in tenant["users"]["nodes"]
        ],
    }


class HandWritten:
    """Good SQL for the same answer, for the tables and columns that exist."""

    def __init__(self, db: Database, usage_columns: list[str]) -> None:
        self.db = db
        self.dialect = db.dialect
        self.copied = "tenant_id" in usage_columns and "user_id" in usage_columns
        start, end = dashboard_range()
        self.edges = edges(start, end, "day", ZONE, 1000)

    def statements(self) -> dict[str, str]:
        """The SQL text (for the report)."""
        return {k: str(v) for k, v in self._sql().items()}

    def _sql(self) -> dict[str, Any]:
        if self.copied:
            usage = "usage_records AS r"
            tenant, user = "r.tenant_id", "r.user_id"
        else:
            usage = (
                "usage_records AS r JOIN interactions AS o ON o.id = r.interaction_id"
            )
            tenant, user = "o.tenant_id", "o.user_id"
        where = f"{tenant} = :tenant AND r.created_at >= :start AND r.created_at < :end"
        if self.dialect == "postgresql":
            # Separate hash aggregations beat one GROUPING SETS pass here (the
            # planner misjudges the number of days and sorts); width_bucket over
            # the day edges beats date_trunc(..., zone) per row.
            return {
                "buckets": text(
                    "SELECT width_bucket(r.created_at, CAST(:edges AS timestamptz[])) "
                    "AS bucket, r.source, sum(r.credits) AS credits, "
                    f"count(*) AS records FROM {usage} WHERE {where} GROUP BY 1, 2"
                ),
                "users": text(
                    f"SELECT {user} AS user_id, sum(r.credits) AS credits "
                    f"FROM {usage} WHERE {where} GROUP BY 1"
                ),
                "interactions": text(
                    "SELECT x.user_id, x.interaction_id, i.created_at, x.credits, "
                    "x.last_at FROM unnest(CAST(:users AS text[])) AS u(user_id) "
                    "CROSS JOIN LATERAL ("
                    f"  SELECT {user} AS user_id, r.interaction_id, "
                    "  max(r.created_at) AS last_at, sum(r.credits) AS credits "
                    f"  FROM {usage} WHERE {where} AND {user} = u.user_id "
                    f"  GROUP BY {user}, r.interaction_id "
                    "  ORDER BY last_at DESC, r.interaction_id DESC LIMIT 10"
                    ") AS x JOIN interactions AS i ON i.id = x.interaction_id"
                ),
            }
        day = f"tz_trunc(r.created_at, 'day', '{ZONE_NAME}')"
        return {
            "buckets": text(
                f"SELECT {day} AS day, r.source, credit_sum(r.credits) AS credits, "
                f"count(*) AS records FROM {usage} WHERE {where} GROUP BY 1, 2"
            ),
            "users": text(
                f"SELECT {user} AS user_id, credit_sum(r.credits) AS credits, "
                f"count(*) OVER () AS users FROM {usage} WHERE {where} "
                f"GROUP BY {user} ORDER BY credits DESC, user_id LIMIT {TOP_USERS}"
            ),
            "interactions": text(
                "SELECT x.user_id, x.interaction_id, i.created_at, x.credits, x.last_at "
                "FROM ("
                f"  SELECT {user} AS user_id, r.interaction_id, "
                "  max(r.created_at) AS last_at, credit_sum(r.credits) AS credits, "
                f"  row_number() OVER (PARTITION BY {user} "
                "    ORDER BY max(r.created_at) DESC, r.interaction_id DESC) AS rn "
                f"  FROM {usage} WHERE {where} AND {user} IN :users "
                f"  GROUP BY {user}, r.interaction_id"
                ") AS x JOIN interactions AS i ON i.id = x.interaction_id "
                f"WHERE x.rn <= {LATEST_INTERACTIONS}"
            ).bindparams(bindparam("users", expanding=True)),
        }

    async def answer(self, tenant: str) -> dict[str, Any]:
        """The dashboard's answer, in the comparable form."""
        start, end = dashboard_range()
        sql = self._sql()
        if self.dialect == "postgresql":
            params: dict[str, Any] = {"tenant": tenant, "start": start, "end": end}
        else:
            params = {"tenant": tenant, "start": _sqlite(start), "end": _sqlite(end)}
        sources: dict[str, Decimal] = defaultdict(Decimal)
        per_day: dict[datetime, Decimal] = defaultdict(Decimal)
        records = 0
        async with self.db.read() as session:
            if self.dialect == "postgresql":
                bucketed = {**params, "edges": self.edges}
                for row in await session.execute(sql["buckets"], bucketed):
                    per_day[self.edges[row.bucket - 1]] += row.credits
                    sources[row.source] += row.credits
                    records += row.records
                users = [
                    (row.user_id, row.credits)
                    for row in await session.execute(sql["users"], params)
                ]
                users_total = len(users)
                users.sort(key=lambda u: (-u[1], u[0]))
                top = users[:TOP_USERS]
            else:
                for row in await session.execute(sql["buckets"], params):
                    amount = Decimal(row.credits)
                    per_day[_instant(row.day)] += amount
                    sources[row.source] += amount
                    records += row.records
                rows = (await session.execute(sql["users"], params)).all()
                top = [(row.user_id, Decimal(row.credits)) for row in rows]
                users_total = rows[0].users if rows else 0
            latest: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
            if top:
                ids = [u for u, _ in top]
                chosen = {**params, "users": ids}
                for row in await session.execute(sql["interactions"], chosen):
                    latest[row.user_id].append(
                        (
                            _instant(row.last_at),
                            row.interaction_id,
                            _instant(row.created_at),
                            Decimal(row.credits),
                        )
                    )
        return {
            "credits": {
                "total": sum(sources.values(), Decimal(0)),
                "STREAM": sources["STREAM"],
                "TRANSCRIPT": sources["TRANSCRIPT"],
                "DOCUMENT": sources["DOCUMENT"],
                "records": records,
            },
            "buckets": [
                (a, b, per_day.get(a, Decimal(0)))
                for a, b in zip(self.edges, self.edges[1:], strict=False)
            ],
            "users_total": users_total,
            "users": [
                (
                    user,
                    amount,
                    [
                        (i, created, total)
                        for _, i, created, total in sorted(latest[user], reverse=True)[
                            :LATEST_INTERACTIONS
                        ]
                    ],
                )
                for user, amount in top
            ],
        }


def _sqlite(instant: datetime) -> str:
    return (
        instant.astimezone(UTC)
        .replace(tzinfo=None)
        .isoformat(sep=" ", timespec="microseconds")
    )


def differences(api: dict[str, Any], sql: dict[str, Any]) -> list[str]:
    """Where the two answers differ (empty: identical)."""
    found = []
    if api["credits"] != sql["credits"]:
        found.append(f"credits: API {api['credits']} vs SQL {sql['credits']}")
    if len(api["buckets"]) != len(sql["buckets"]):
        found.append(f"buckets: API {len(api['buckets'])} vs SQL {len(sql['buckets'])}")
    for a, s in zip(api["buckets"], sql["buckets"], strict=False):
        if a != s:
            found.append(f"bucket {a[0]:%Y-%m-%d %H:%M}Z: API {a[1:]} vs SQL {s[1:]}")
            break
    if api["users_total"] != sql["users_total"]:
        found.append(
            f"users totalCount: API {api['users_total']} vs SQL {sql['users_total']}"
        )
    for a, s in zip(api["users"], sql["users"], strict=False):
        if a[:2] != s[:2]:
            found.append(f"user: API {a[:2]} vs SQL {s[:2]}")
            break
        if a[2] != s[2]:
            first = next(
                (pair for pair in zip(a[2], s[2], strict=False) if pair[0] != pair[1]),
                (len(a[2]), len(s[2])),
            )
            found.append(f"interactions of {a[0]}: API vs SQL differ: {first}")
            break
    if len(api["users"]) != len(sql["users"]):
        found.append(f"users: API {len(api['users'])} vs SQL {len(sql['users'])}")
    return found


def expected_credits(meta: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The generator's own sums for the tenant in the range."""
    entry = next(s for s in meta["summary"] if s["tenant"] == tenant)
    by_source = {s: Decimal(n).scaleb(-9) for s, n in entry["nano_by_source"].items()}
    return {
        "total": sum(by_source.values(), Decimal(0)),
        **by_source,
        "records": entry["records"],
    }


async def _measure(
    target: Target,
    meta: dict[str, Any],
    hand: HandWritten,
    connection: Connection,
    request: bytes,
    tenant: str,
    pgl: PostGraphile | None,
) -> dict[str, Any]:
    """One tenant: compare the answers once, then time them alternately."""
    entry = next(s for s in meta["summary"] if s["tenant"] == tenant)
    errors: list[str] = []

    async def api() -> dict[str, Any] | None:
        try:
            return graphql_data(*await connection.send(request))
        except GraphQLError as error:  # e.g. a statement or request timeout
            errors.append(str(error))
            return None

    first = await api()
    sql_answer = await hand.answer(tenant)
    api_answer = from_api(first) if first is not None else None
    diffs = (
        differences(api_answer, sql_answer)
        if api_answer is not None
        else ["the API answered with an error"]
    )
    truth = expected_credits(meta, tenant)
    pgl_request = pgl.request(tenant, *dashboard_range()) if pgl else None
    pgl_diffs: list[str] = []
    pgl_ok = pgl is not None
    if pgl is not None and pgl_request is not None:
        try:
            pgl_answer = comparable(await pgl.send(pgl_request), hand.edges)
            pgl_diffs = (
                differences(api_answer, pgl_answer)
                if api_answer is not None
                else ["the API answered with an error"]
            )
        except GraphQLError as error:
            pgl_diffs = [f"PostGraphile: {error}"]
            pgl_ok = False
    for _ in range(WARMUP - 1):
        await api()
        await hand.answer(tenant)
        if pgl_ok and pgl is not None and pgl_request is not None:
            await pgl.send(pgl_request)
    api_times: list[float] = []
    sql_times: list[float] = []
    pgl_times: list[float] = []
    load_before = load_average()
    budget = time.perf_counter() + TIME_BUDGET_SECONDS
    for _ in range(target.scale.dashboard_iterations):
        started = time.perf_counter()
        if await api() is not None:
            api_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        await hand.answer(tenant)
        sql_times.append(time.perf_counter() - started)
        if pgl_ok and pgl is not None and pgl_request is not None:
            started = time.perf_counter()
            await pgl.send(pgl_request)
            pgl_times.append(time.perf_counter() - started)
        if time.perf_counter() > budget and len(sql_times) >= 5:
            break
    api_latency = latency(api_times)
    sql_latency = latency(sql_times)
    ratio = (
        round(api_latency["p50_ms"] / sql_latency["p50_ms"], 3) if api_times else None
    )
    postgraphile: dict[str, Any] | None = None
    if pgl is not None:
        pgl_latency = latency(pgl_times)
        postgraphile = {
            "latency": pgl_latency,
            "ratio_api_to_postgraphile_p50": round(
                api_latency["p50_ms"] / pgl_latency["p50_ms"], 3
            )
            if api_times and pgl_times
            else None,
            "answers_identical": not pgl_diffs,
            "differences": pgl_diffs[:5],
        }
    return {
        "tenant": tenant,
        "records_in_range": entry["records"],
        "records_all_time": entry["records_all_time"],
        "users": entry["users"],
        "users_with_usage_in_range": entry["users_with_usage"],
        "api": api_latency,
        "handwritten": sql_latency,
        "ratio_p50": ratio,
        "api_errors": len(errors),
        "first_api_errors": errors[:3],
        "answers_identical": not diffs,
        "differences": diffs[:5],
        "api_totals_equal_generated": api_answer is not None
        and api_answer["credits"] == truth,
        "generated_totals": {k: str(v) for k, v in truth.items()},
        "postgraphile": postgraphile,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def run(
    target: Target,
    server: Server,
    key: str,
    meta: dict[str, Any],
    pgl: PostGraphile | None = None,
) -> dict[str, Any]:
    """p50/p99 through the API, of the hand-written SQL and (when given) of
    PostGraphile, for the data set's tenants."""
    db = Database.from_url(target.url)
    hand = HandWritten(db, meta["columns"]["usage_records"])
    connection = Connection("127.0.0.1", server.port)
    headers = {"Authorization": f"Bearer {key}"}
    result: dict[str, Any] = {
        "query": QUERY.strip(),
        "variables_example": variables(next(iter(meta["tenants"].values()))),
        "handwritten_sql": hand.statements(),
        "handwritten_uses_copied_tenant_user": hand.copied,
        "postgraphile_query": None if pgl is None else PGL_QUERY.strip(),
        "tenants": {},
    }
    try:
        for label, tenant in meta["tenants"].items():
            request = connection.prepare(
                "POST", "/graphql", graphql_body(QUERY, variables(tenant)), headers
            )
            result["tenants"][label] = await _measure(
                target, meta, hand, connection, request, tenant, pgl
            )
    finally:
        await connection.close()
        await db.dispose()
    return result
