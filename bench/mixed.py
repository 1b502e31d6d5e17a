"""Mixed load on a running deployment, with its own account of what was acknowledged.

Senders, each a loop until `stop` is set, over real HTTP:

- webhook senders: single `recordStreamUsage` / `recordTranscriptUsage` /
  `recordDocumentUsage` mutations on registered interactions, half signed like
  a webhook (X-Webhook-Signature, signed anew for every attempt), half with an
  API key; a share of them redeliveries of records already acknowledged; with
  `Plan.register`, a share `registerInteraction` of new interactions (the
  records' next targets) or again of earlier ones;
- batch senders: `ingestUsage` batches of new records (on interactions, and
  FACTS attributed to a tenant and user directly), some with earlier records
  mixed in, some whole earlier batches sent again;
- job senders: `requestDocument` and `requestTranscript` (audio uploaded as
  multipart) on interactions created at Corti through `createInteraction`;
- dashboard readers: a tenant's credits, hourly buckets and top users.

A call that fails (transport error, 5xx, a retryable code) is retried after a
short backoff, like a sender that retries its failed calls, unless the plan
abandons it (`Plan.abandon`): abandoned calls are kept aside so that a test can
check they were written all or nothing. Answers a correct sender never gets
(BAD_USER_INPUT, CONFLICT, ...) raise `Refused`. Every attempt is timed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from service.auth.webhooks import sign

Key = tuple[str, str]  # (source, externalId)

SINGLES: dict[str, tuple[str, str, str, str]] = {
    # source: (mutation, input type, id field, credits field)
    "STREAM": ("recordStreamUsage", "StreamUsageInput", "streamId", "credits"),
    "TRANSCRIPT": (
        "recordTranscriptUsage",
        "TranscriptUsageInput",
        "transcriptId",
        "creditsConsumed",
    ),
    "DOCUMENT": (
        "recordDocumentUsage",
        "DocumentUsageInput",
        "documentId",
        "creditsConsumed",
    ),
}
INGEST = """
mutation Ingest($records: [UsageRecordInput!]!) {
  ingestUsage(records: $records) { accepted duplicates }
}"""
REGISTER = """
mutation Register($in: RegisterInteractionInput!) {
  registerInteraction(input: $in) { id }
}"""
CREATE = """
mutation Create($in: CreateInteractionInput!) { createInteraction(input: $in) { id } }"""
DOCUMENT_JOB = """
mutation Document($in: RequestDocumentInput!) { requestDocument(input: $in) { id } }"""
TRANSCRIPT_JOB = """
mutation Transcript($in: RequestTranscriptInput!) {
  requestTranscript(input: $in) { id }
}"""
DASHBOARD = """
query Dashboard($t: ID!, $from: DateTime!, $to: DateTime!) {
  tenant(id: $t) {
    credits { total records }
    usage(range: {from: $from, to: $to}, granularity: HOUR) { start credits { total } }
    users(first: 10) { nodes { id credits { total } } }
  }
}"""
TOTALS = "query Totals($t: ID!) { tenant(id: $t) { credits { total records } } }"
JOB_FIELDS = "id status error interaction { id } usage { source externalId credits }"

# Codes a correct sender never gets: retrying would not help.
REFUSED = {
    "BAD_USER_INPUT",
    "CONFLICT",
    "FORBIDDEN",
    "UNAUTHENTICATED",
    "NOT_FOUND",
    "BUDGET_EXCEEDED",
}
AUDIO_BYTES_PER_SECOND = 32_000  # the sandbox's assumed format


def single_mutation(source: str) -> str:
    """The webhook-style mutation for one record of `source`."""
    name, input_type, _, _ = SINGLES[source]
    return f"mutation($in: {input_type}!) {{ {name}(input: $in) {{ id }} }}"


class Refused(Exception):
    """An answer that retrying cannot change (a bug in the service or the load)."""


class Abandoned(Exception):
    """A failed call that the plan gave up instead of retrying."""


@dataclass
class Failure:
    """One failed attempt."""

    op: str
    code: str
    status: int | None
    seconds: float
    at: float  # time.time()
    body: str


@dataclass
class Plan:
    """Who sends what, and how fast."""

    tenants: int = 3
    users: int = 2
    interactions: int = 4  # registered per tenant, for webhook usage
    corti_interactions: int = 1  # per tenant, created at Corti by createInteraction
    webhook_senders: int = 4
    batch_senders: int = 1
    batch_size: int = 20
    job_senders: int = 1
    dashboard_readers: int = 1
    redelivery: float = 0.25  # share of single calls that are redeliveries
    register: float = 0.0  # share of webhook calls that are registerInteraction
    abandon: float = 0.0  # share of failed new-record calls given up, not retried
    pause: float = 0.0  # seconds each sender waits between two calls
    audio_seconds: float = 1.0
    timeout: float = 40.0  # client timeout per attempt


@dataclass
class Acked:
    """A record the service acknowledged."""

    tenant: str
    credits: Decimal
    at: float  # time.time() of the acknowledgement


@dataclass
class _Sent:
    """A single call that succeeded, for redelivery."""

    source: str
    variables: dict[str, Any]
    record_id: str


class MixedLoad:
    """The senders, and what they were told (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        key: str,
        webhook_secret: str,
        plan: Plan | None = None,
        run_id: str | None = None,
        seed: int = 0,
    ) -> None:
        self.plan = plan or Plan()
        self.key = key
        self.secret = webhook_secret
        self.run_id = run_id or uuid.uuid4().hex[:6]
        self.rng = random.Random(seed)
        self.http = httpx.AsyncClient(
            base_url=url,
            timeout=self.plan.timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )
        self.tenants = [f"{self.run_id}-t{i}" for i in range(self.plan.tenants)]
        self.interactions: list[tuple[str, str, str]] = []  # (id, tenant, user)
        self._tenant_by_interaction: dict[str, str] = {}
        self.corti_interactions: list[tuple[str, str]] = []  # (id, tenant)
        self.acked: dict[Key, Acked] = {}
        self.record_ids: dict[Key, str] = {}
        self.id_mismatches: list[str] = []
        self.abandoned: list[dict[Key, tuple[str, Decimal]]] = []
        self.jobs: list[str] = []
        self.job_failed_attempts = 0
        self.accepted = 0  # ingestUsage's `accepted`, summed
        self.singles_new = 0  # new records acknowledged by single mutations
        self.latencies: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.failures: list[Failure] = []
        self.calls: Counter[str] = Counter()
        self._sent: deque[_Sent] = deque(maxlen=2000)
        self._batches: deque[list[dict[str, Any]]] = deque(maxlen=200)
        self._inputs: deque[dict[str, Any]] = deque(maxlen=2000)
        self._registered: deque[dict[str, Any]] = deque(maxlen=2000)
        self._signed_at: dict[bytes, int] = {}
        self._serial = 0

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    def _next(self, prefix: str) -> str:
        self._serial += 1
        return f"{self.run_id}-{prefix}{self._serial}"

    def _credits(self) -> Decimal:
        return Decimal(self.rng.randrange(1, 10**7)).scaleb(-7)

    # --- one call ---------------------------------------------------------------

    async def call(
        self,
        op: str,
        query: str,
        variables: dict[str, Any],
        *,
        signed: bool = False,
        upload: bytes | None = None,
        abandonable: bool = False,
    ) -> dict[str, Any]:
        """`data` of a successful answer, retrying failed attempts."""
        delay = 0.1
        while True:
            started = time.monotonic()
            status, code, text, data = await self._send(
                query, variables, signed, upload
            )
            seconds = time.monotonic() - started
            if code is None and data is not None:
                self.latencies[op].append((time.monotonic(), seconds))
                self.calls[op] += 1
                return data
            code = code or "?"
            self.failures.append(
                Failure(op, code, status, seconds, time.time(), text[:500])
            )
            if code in REFUSED:
                raise Refused(f"{op}: {code} (HTTP {status}) {text[:500]}")
            if abandonable and self.rng.random() < self.plan.abandon:
                raise Abandoned(op)
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)

    async def _send(
        self,
        query: str,
        variables: dict[str, Any],
        signed: bool,
        upload: bytes | None,
    ) -> tuple[int | None, str | None, str, dict[str, Any] | None]:
        """One attempt: (HTTP status, error code or None, body text, data)."""
        try:
            if upload is not None:
                response = await self.http.post(
                    "/graphql",
                    data={
                        "operations": json.dumps(
                            {
                                "query": query,
                                "variables": {"in": {**variables["in"], "audio": None}},
                            }
                        ),
                        "map": json.dumps({"0": ["variables.in.audio"]}),
                    },
                    files={"0": ("audio.raw", upload, "application/octet-stream")},
                    headers={"Authorization": f"Bearer {self.key}"},
                )
            else:
                body = json.dumps({"query": query, "variables": variables}).encode()
                headers = {"Content-Type": "application/json"}
                if signed:
                    headers["X-Webhook-Signature"] = self._sign(body)
                else:
                    headers["Authorization"] = f"Bearer {self.key}"
                response = await self.http.post(
                    "/graphql", content=body, headers=headers
                )
        except httpx.HTTPError as error:
            return None, f"transport:{type(error).__name__}", str(error), None
        text = response.text
        try:
            answer = response.json()
        except ValueError:
            return response.status_code, f"http:{response.status_code}", text, None
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if errors:
            code = (errors[0].get("extensions") or {}).get("code") or "?"
            return response.status_code, str(code), text, None
        if response.status_code != 200 or not isinstance(answer.get("data"), dict):
            return response.status_code, f"http:{response.status_code}", text, None
        data: dict[str, Any] = answer["data"]
        return response.status_code, None, text, data

    def _sign(self, body: bytes) -> str:
        """A fresh signature: the same body is never signed twice with one `t`."""
        digest = hashlib.sha256(body).digest()[:16]
        t = max(int(time.time()), self._signed_at.get(digest, 0) + 1)
        self._signed_at[digest] = t
        return sign(self.secret, body, t)

    # --- setup ------------------------------------------------------------------

    async def setup(self, *, within: float = 60.0) -> None:
        """Register the webhook interactions; create the Corti ones (jobs)."""
        plan = self.plan
        for tenant in self.tenants:
            for n in range(plan.interactions):
                interaction = self._next("i")
                user = f"u{n % plan.users}"
                await self.call(
                    "setup",
                    REGISTER,
                    {
                        "in": {
                            "interactionId": interaction,
                            "tenantId": tenant,
                            "userId": user,
                        }
                    },
                )
                self._add_interaction(interaction, tenant, user)
        created: dict[str, str] = {}
        for tenant in self.tenants:
            for n in range(plan.corti_interactions):
                data = await self.call(
                    "setup",
                    CREATE,
                    {
                        "in": {
                            "tenantId": tenant,
                            "userId": f"u{n % plan.users}",
                            "encounterIdentifier": self._next("visit"),
                        }
                    },
                )
                created[data["createInteraction"]["id"]] = tenant
        done = await self.wait_jobs(list(created), within=within)
        for job_id, tenant in created.items():
            job = done[job_id]
            if job["status"] != "SUCCEEDED":
                raise Refused(f"createInteraction failed: {job}")
            self.corti_interactions.append((job["interaction"]["id"], tenant))

    async def wait_jobs(
        self, ids: list[str], *, within: float = 60.0
    ) -> dict[str, dict[str, Any]]:
        """Poll `job(id:)` (25 per request) until every job SUCCEEDED or FAILED."""
        deadline = time.monotonic() + within
        ended: dict[str, dict[str, Any]] = {}
        pending = [i for i in ids if i not in ended]
        while pending:
            for start in range(0, len(pending), 25):
                chunk = pending[start : start + 25]
                fields = " ".join(
                    f'j{n}: job(id: "{job_id}") {{ {JOB_FIELDS} }}'
                    for n, job_id in enumerate(chunk)
                )
                data = await self.call("jobs", f"query {{ {fields} }}", {})
                for job in data.values():
                    if job and job["status"] in ("SUCCEEDED", "FAILED"):
                        ended[job["id"]] = job
            pending = [i for i in ids if i not in ended]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} job(s) not ended after {within}s")
            await asyncio.sleep(0.2)
        return ended

    # --- the senders ------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Every sender of the plan, until `stop` is set."""
        plan = self.plan
        loops: list[Callable[[], Awaitable[None]]] = [
            *[self.webhook_once] * plan.webhook_senders,
            *[self.batch_once] * plan.batch_senders,
            *[self.job_once] * plan.job_senders,
            *[self.dashboard_once] * plan.dashboard_readers,
        ]
        await asyncio.gather(*(self._loop(step, stop) for step in loops))

    async def _loop(
        self, step: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            await step()
            if self.plan.pause:
                await asyncio.sleep(self.plan.pause * self.rng.uniform(0.5, 1.5))

    def _add_interaction(self, interaction: str, tenant: str, user: str) -> None:
        self.interactions.append((interaction, tenant, user))
        self._tenant_by_interaction[interaction] = tenant

    async def webhook_once(self) -> None:
        """One single mutation: a registration, a new record or a redelivery."""
        if self.plan.register and self.rng.random() < self.plan.register:
            await self.register_once()
            return
        redelivery = bool(self._sent) and self.rng.random() < self.plan.redelivery
        if redelivery:
            sent = self.rng.choice(self._sent)
            source, variables = sent.source, sent.variables
        else:
            source = self.rng.choice(tuple(SINGLES))
            interaction, _tenant, _user = self.rng.choice(self.interactions)
            _, _, id_field, credits_field = SINGLES[source]
            variables = {
                "in": {
                    "interactionId": interaction,
                    id_field: self._next(source[0].lower()),
                    credits_field: str(self._credits()),
                }
            }
        await self.single(source, variables, redelivery=redelivery)

    async def single(
        self, source: str, variables: dict[str, Any], *, redelivery: bool = False
    ) -> str:
        """Send one record with a single mutation; the record's id."""
        name, _, id_field, credits_field = SINGLES[source]
        fields = variables["in"]
        key = (source, fields[id_field])
        tenant = self._tenant_of(fields["interactionId"])
        credits = Decimal(fields[credits_field])
        signed = self.rng.random() < 0.5
        op = f"webhook.{name}" + (".signed" if signed else "")
        try:
            data = await self.call(
                op,
                single_mutation(source),
                variables,
                signed=signed,
                abandonable=not redelivery,
            )
        except Abandoned:
            self.abandoned.append({key: (tenant, credits)})
            return ""
        record_id: str = data[name]["id"]
        known = self.record_ids.setdefault(key, record_id)
        if known != record_id:
            self.id_mismatches.append(f"{key}: {known} then {record_id}")
        if key not in self.acked:
            self.singles_new += 1
            self.acked[key] = Acked(tenant, credits, time.time())
        if not redelivery:
            self._sent.append(_Sent(source, variables, record_id))
        return record_id

    async def register_once(self) -> None:
        """`registerInteraction` of a new interaction, or again of an earlier one.

        A new one joins the interactions that records are sent for once it is
        acknowledged. Registrations are never abandoned (a record's tenant
        would be unknown).
        """
        redelivery = bool(self._registered) and self.rng.random() < self.plan.redelivery
        if redelivery:
            variables = self.rng.choice(self._registered)
        else:
            variables = {
                "in": {
                    "interactionId": self._next("i"),
                    "tenantId": self.rng.choice(self.tenants),
                    "userId": f"u{self.rng.randrange(self.plan.users)}",
                }
            }
        signed = self.rng.random() < 0.5
        op = "webhook.registerInteraction" + (".signed" if signed else "")
        data = await self.call(op, REGISTER, variables, signed=signed)
        fields = variables["in"]
        key = ("INTERACTION", fields["interactionId"])
        known = self.record_ids.setdefault(key, data["registerInteraction"]["id"])
        if known != data["registerInteraction"]["id"]:
            self.id_mismatches.append(f"{key}: {known} then {data}")
        if not redelivery:
            self._registered.append(variables)
            self._add_interaction(
                fields["interactionId"], fields["tenantId"], fields["userId"]
            )

    def _tenant_of(self, interaction: str) -> str:
        return self._tenant_by_interaction[interaction]

    async def batch_once(self) -> None:
        """One ingestUsage batch: new records, some earlier ones, or an earlier batch."""
        if self._batches and self.rng.random() < self.plan.redelivery / 2:
            await self.batch(self.rng.choice(self._batches), redelivery=True)
            return
        records: list[dict[str, Any]] = []
        earlier = self.rng.random() < self.plan.redelivery and len(self._inputs) > 10
        if earlier:
            records.extend(self.rng.sample(list(self._inputs), 3))
        while len(records) < self.plan.batch_size:
            if self.rng.random() < 0.25:
                tenant = self.rng.choice(self.tenants)
                user = f"u{self.rng.randrange(self.plan.users)}"
                records.append(
                    {
                        "source": "FACTS",
                        "tenantId": tenant,
                        "userId": user,
                        "externalId": self._next("f"),
                        "credits": str(self._credits()),
                    }
                )
            else:
                interaction, _tenant, _user = self.rng.choice(self.interactions)
                records.append(
                    {
                        "source": self.rng.choice(tuple(SINGLES)),
                        "interactionId": interaction,
                        "externalId": self._next("b"),
                        "credits": str(self._credits()),
                    }
                )
        await self.batch(records, redelivery=earlier)

    def _record_tenant(self, record: dict[str, Any]) -> str:
        tenant = record.get("tenantId")
        return str(tenant) if tenant else self._tenant_of(record["interactionId"])

    async def batch(self, records: list[dict[str, Any]], *, redelivery: bool) -> None:
        """Send one batch; account for it."""
        keys = {
            (r["source"], r["externalId"]): (
                self._record_tenant(r),
                Decimal(r["credits"]),
            )
            for r in records
        }
        try:
            data = await self.call(
                "ingestUsage", INGEST, {"records": records}, abandonable=not redelivery
            )
        except Abandoned:
            self.abandoned.append(keys)
            return
        result = data["ingestUsage"]
        if result["accepted"] + result["duplicates"] != len(records):
            raise Refused(f"ingestUsage counted {result} for {len(records)} records")
        self.accepted += result["accepted"]
        now = time.time()
        for key, (tenant, credits) in keys.items():
            self.acked.setdefault(key, Acked(tenant, credits, now))
        if not redelivery:
            self._batches.append(records)
            self._inputs.extend(records)

    async def job_once(self) -> None:
        """One Corti job mutation: a document or a transcript (audio uploaded)."""
        interaction, _tenant = self.rng.choice(self.corti_interactions)
        before = len(self.failures)
        if self.rng.random() < 0.5:
            words = " ".join(["Cough and fever."] * self.rng.randrange(1, 20))
            data = await self.call(
                "requestDocument",
                DOCUMENT_JOB,
                {
                    "in": {
                        "interactionId": interaction,
                        "templateKey": "soap",
                        "context": [f"{self._next('note')}: {words}"],
                    }
                },
            )
            self.jobs.append(data["requestDocument"]["id"])
        else:
            seconds = self.plan.audio_seconds * self.rng.uniform(0.5, 2.0)
            data = await self.call(
                "requestTranscript",
                TRANSCRIPT_JOB,
                {"in": {"interactionId": interaction}},
                upload=b"\x00" * int(seconds * AUDIO_BYTES_PER_SECOND),
            )
            self.jobs.append(data["requestTranscript"]["id"])
        self.job_failed_attempts += len(self.failures) - before

    async def dashboard_once(self) -> None:
        """One dashboard query of a random tenant (the last two hours, hourly)."""
        now = datetime.now(UTC)
        await self.call(
            "dashboard",
            DASHBOARD,
            {
                "t": self.rng.choice(self.tenants),
                "from": _iso(now - timedelta(hours=2)),
                "to": _iso(now + timedelta(hours=1)),
            },
        )

    # --- what the senders know ---------------------------------------------------

    def expected_totals(self) -> dict[str, Decimal]:
        """Credits per tenant of every acknowledged webhook and batch record."""
        totals = {tenant: Decimal(0) for tenant in self.tenants}
        for acked in self.acked.values():
            totals[acked.tenant] += acked.credits
        return totals

    def failure_codes(self) -> Counter[str]:
        """Failed attempts by code."""
        return Counter(f.code for f in self.failures)


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")
