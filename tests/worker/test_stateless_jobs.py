"""requestFacts, requestCoding, requestDictation and guided documents through the
real worker and the sandbox: usage attributed to the tenant and user directly,
exactly once as far as Corti lets us, delta_usage only as a provisional figure."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from corti_sandbox.testing import SandboxControl
from service.db.models import Job, UsageRecord
from service.db.session import Database
from tests.budgets.ops import codes, set_budget
from tests.fixtures.app import GraphQLClient, make_key
from tests.fixtures.corti import audio
from tests.fixtures.operations import DOCUMENT as RECORD_DOCUMENT
from tests.fixtures.operations import REGISTER
from tests.worker.helpers import (
    CODING,
    DICTATION,
    DOCUMENT,
    FACTS,
    STREAM,
    RunWorker,
    assert_billed_once,
    job_of,
    ledger,
    new_interaction,
    upload,
    wait_for_job,
)

pytestmark = pytest.mark.asyncio

USAGE = """
query($id: ID!) {
  job(id: $id) {
    status error attempts provisionalCredits interaction { id }
    usage { source externalId credits interactionId tenantId userId }
  }
}"""
TOTALS = """
query($t: ID!, $u: ID!) {
  tenant(id: $t) {
    credits { total facts coding dictation document }
    user(id: $u) { credits { total facts coding dictation } }
  }
}"""


async def _job(gql: GraphQLClient, job_id: str) -> dict[str, Any]:
    data = await gql.data(USAGE, {"id": job_id})
    job: dict[str, Any] = data["job"]
    return job


async def _done(gql: GraphQLClient, job_id: str) -> dict[str, Any]:
    await wait_for_job(gql, job_id)
    return await _job(gql, job_id)


async def _billed(control: SandboxControl, kind: str) -> list[Decimal]:
    return [Decimal(str(b["credits"])) for b in await control.billed(kind=kind)]


async def _jobs(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


class TestStatelessJobs:
    async def test_each_kind_is_recorded_once_for_the_user(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            facts = job_of(
                await gql(
                    FACTS,
                    {"in": {"tenantId": "t1", "userId": "u1", "text": ["a" * 150]}},
                )
            )
            assert facts["kind"] == "requestFacts"
            assert facts["provisionalCredits"] is None
            coding = job_of(
                await gql(
                    CODING,
                    {
                        "in": {
                            "tenantId": "t1",
                            "userId": "u1",
                            "system": ["icd10cm-outpatient", "cpt"],
                            "text": ["Short arm splint applied."],
                            "maxCandidates": 1,
                        }
                    },
                )
            )
            dictation = job_of(
                await upload(
                    gql, DICTATION, {"tenantId": "t1", "userId": "u2"}, audio(2.5)
                )
            )
            done = {
                name: await _done(gql, job["id"])
                for name, job in (
                    ("facts", facts),
                    ("coding", coding),
                    ("dictation", dictation),
                )
            }
        for job in done.values():
            assert job["status"] == "SUCCEEDED", job
            assert job["attempts"] == 1
            assert job["interaction"] is None
            assert job["provisionalCredits"] is None
            assert job["usage"]["interactionId"] is None
            assert job["usage"]["tenantId"] == "t1"
        assert done["facts"]["usage"]["source"] == "FACTS"
        assert done["facts"]["usage"]["credits"] == "0.07"
        assert done["facts"]["usage"]["userId"] == "u1"
        assert done["coding"]["usage"]["source"] == "CODING"
        assert done["coding"]["usage"]["credits"] == "0.21"
        assert done["dictation"]["usage"]["source"] == "DICTATION"
        assert done["dictation"]["usage"]["credits"] == "0.045"
        assert done["dictation"]["usage"]["userId"] == "u2"
        # Our ledger equals the sandbox's: each billed once, recorded once.
        assert await _billed(control, "facts") == [Decimal("0.07")]
        assert await _billed(control, "coding") == [Decimal("0.21")]
        [session] = await control.billed(kind="dictation")
        assert done["dictation"]["usage"]["externalId"] == session["id"]
        records = await ledger(db)
        assert len(records) == 3
        assert {r.source for r in records} == {"FACTS", "CODING", "DICTATION"}
        await assert_billed_once(control, db)
        totals = await gql.data(TOTALS, {"t": "t1", "u": "u1"})
        assert totals["tenant"]["credits"] == {
            "total": "0.325",
            "facts": "0.07",
            "coding": "0.21",
            "dictation": "0.045",
            "document": "0",
        }
        assert totals["tenant"]["user"]["credits"]["total"] == "0.28"

    async def test_guided_document_belongs_to_the_interaction(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql, "t1", "u1")
            body = await gql(
                DOCUMENT,
                {
                    "in": {
                        "interactionId": interaction_id,
                        "templateKey": "soap",
                        "context": ["Cough."],
                        "guided": True,
                    }
                },
            )
            job = await _done(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        [billed] = await control.billed(kind="document")
        assert billed["interaction_id"] == interaction_id
        assert job["usage"]["source"] == "DOCUMENT"
        assert job["usage"]["externalId"] == billed["id"]
        assert job["usage"]["interactionId"] == interaction_id
        assert Decimal(job["usage"]["credits"]) == Decimal(str(billed["credits"]))
        await assert_billed_once(control, db)
        requests = (await control.stats())["requests"]
        assert any(r["path"] == "/v2/documents/" for r in requests)

    async def test_guided_document_without_an_id_is_keyed_by_the_job(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        await control.configure(guided_document_ids=False)
        async with run_worker():
            interaction_id = await new_interaction(gql, "t1", "u1")
            queued = job_of(
                await gql(
                    DOCUMENT,
                    {
                        "in": {
                            "interactionId": interaction_id,
                            "templateKey": "soap",
                            "context": ["Cough."],
                            "guided": True,
                        }
                    },
                )
            )
            job = await _done(gql, queued["id"])
        assert job["status"] == "SUCCEEDED", job
        assert job["usage"]["source"] == "DOCUMENT"
        assert job["usage"]["externalId"] == queued["id"]
        assert job["usage"]["interactionId"] == interaction_id
        [billed] = await control.billed(kind="document")
        assert Decimal(job["usage"]["credits"]) == Decimal(str(billed["credits"]))
        assert len(await ledger(db)) == 1

    async def test_coding_a_document_and_redelivering_a_dictation(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            interaction_id = await new_interaction(gql, "t1", "u1")
            document = await _done(
                gql,
                job_of(
                    await gql(
                        DOCUMENT,
                        {
                            "in": {
                                "interactionId": interaction_id,
                                "templateKey": "soap",
                                "context": ["Cough."],
                            }
                        },
                    )
                )["id"],
            )
            document_id = document["usage"]["externalId"]
            coding = await _done(
                gql,
                job_of(
                    await gql(
                        CODING,
                        {
                            "in": {
                                "tenantId": "t1",
                                "userId": "u2",
                                "system": ["cpt"],
                                "documentId": document_id,
                            }
                        },
                    )
                )["id"],
            )
            dictation = await _done(
                gql,
                job_of(
                    await upload(
                        gql, DICTATION, {"tenantId": "t1", "userId": "u2"}, audio(1)
                    )
                )["id"],
            )
        assert coding["status"] == "SUCCEEDED", coding
        # Coded from the document, attributed to the job's user (not to the
        # document's interaction).
        assert coding["usage"]["userId"] == "u2"
        assert coding["usage"]["interactionId"] is None
        [call] = await control.billed(kind="coding")
        assert Decimal(coding["usage"]["credits"]) == Decimal(str(call["credits"]))
        # The customer's own report of the same dictation (recordDictationUsage,
        # keyed by the sessionId as the job is) is a duplicate, not more credits.
        again = await gql.data(
            """mutation($s: ID!) { recordDictationUsage(input: {sessionId: $s,
            credits: "0.015", tenantId: "t1", userId: "u2"}) { id } }""",
            {"s": dictation["usage"]["externalId"]},
        )
        assert again["recordDictationUsage"]["id"]
        totals = await gql.data(TOTALS, {"t": "t1", "u": "u2"})
        assert totals["tenant"]["user"]["credits"]["dictation"] == "0.015"
        await assert_billed_once(control, db)


class TestAmbiguity:
    async def test_a_lost_stateless_answer_is_never_sent_twice(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        await control.arm({"kind": "lose_answer", "path": "/tools/extract-facts"})
        async with run_worker():
            body = await gql(
                FACTS, {"in": {"tenantId": "t1", "userId": "u1", "text": ["x"]}}
            )
            job = await _done(gql, job_of(body)["id"])
        assert job["status"] == "FAILED"
        assert "not sent again" in job["error"]
        assert job["attempts"] == 1
        # Corti billed the call once; we cannot know it, so nothing is recorded
        # (README: stateless calls have no lookup) and nothing is billed twice.
        assert len(await control.billed(kind="facts")) == 1
        assert await ledger(db) == []

    async def test_a_refused_call_fails_unbilled(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        async with run_worker():
            body = await gql(
                CODING,
                {
                    "in": {
                        "tenantId": "t1",
                        "userId": "u1",
                        "system": ["nope"],
                        "text": ["x"],
                    }
                },
            )
            job = await _done(gql, job_of(body)["id"])
        assert job["status"] == "FAILED"
        assert job["attempts"] == 1
        assert await control.billed() == []
        assert await ledger(db) == []

    async def test_insufficient_balance_then_success_is_billed_once(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        await control.arm(
            {"kind": "insufficient_balance", "retry_after": 0, "path": "/tools/coding/"}
        )
        async with run_worker():
            body = await gql(
                CODING,
                {
                    "in": {
                        "tenantId": "t1",
                        "userId": "u1",
                        "system": ["cpt"],
                        "text": ["x"],
                    }
                },
            )
            job = await _done(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        assert await _billed(control, "coding") == [Decimal("0.11")]
        assert [r.credits for r in await ledger(db)] == [Decimal("0.11")]


class TestDictationAndDeltas:
    async def test_a_dictation_dropped_before_usage_runs_again(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        await control.arm({"kind": "drop_stream", "path": "/transcribe"})
        async with run_worker():
            body = await upload(
                gql, DICTATION, {"tenantId": "t1", "userId": "u1"}, audio(1)
            )
            job = await _done(gql, job_of(body)["id"])
        assert job["status"] == "SUCCEEDED", job
        assert job["attempts"] == 2
        [billed] = await control.billed(kind="dictation")  # the dropped one is not
        assert job["usage"]["externalId"] == billed["id"]
        assert [r.credits for r in await ledger(db)] == [Decimal("0.015")]
        await assert_billed_once(control, db)

    async def test_delta_after_usage_is_not_counted(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
    ) -> None:
        await control.arm({"kind": "late_delta_usage", "count": 2})
        async with run_worker():
            interaction_id = await new_interaction(gql, "t1", "u1")
            dictation = await upload(
                gql, DICTATION, {"tenantId": "t1", "userId": "u1"}, audio(1)
            )
            stream = await upload(
                gql, STREAM, {"interactionId": interaction_id}, audio(1)
            )
            jobs = [await _done(gql, job_of(b)["id"]) for b in (dictation, stream)]
        assert [j["usage"]["credits"] for j in jobs] == ["0.015", "0.02"]
        assert sorted(r.credits for r in await ledger(db)) == [
            Decimal("0.015"),
            Decimal("0.02"),
        ]

    @pytest.mark.parametrize(
        ("kind", "expected"), [("dictation", "0.03"), ("stream", "0.04")]
    )
    async def test_provisional_credits_while_waiting_for_usage(
        self,
        gql: GraphQLClient,
        db: Database,
        control: SandboxControl,
        run_worker: RunWorker,
        kind: str,
        expected: str,
    ) -> None:
        await control.arm({"kind": "delay_usage", "seconds": 3})
        async with run_worker():
            if kind == "dictation":
                body = await upload(
                    gql, DICTATION, {"tenantId": "t1", "userId": "u1"}, audio(2.5)
                )
            else:
                interaction_id = await new_interaction(gql, "t1", "u1")
                body = await upload(
                    gql, STREAM, {"interactionId": interaction_id}, audio(2.5)
                )
            job_id = job_of(body)["id"]
            seen = await _provisional(gql, job_id, Decimal(expected))
            assert seen["status"] == "RUNNING"
            assert seen["usage"] is None
            # Provisional only: in no total.
            assert await ledger(db) == []
            done = await _done(gql, job_id)
        assert done["status"] == "SUCCEEDED", done
        assert done["provisionalCredits"] is None
        final = "0.045" if kind == "dictation" else "0.06"
        assert done["usage"]["credits"] == final
        assert [r.credits for r in await ledger(db)] == [Decimal(final)]


async def _provisional(
    gql: GraphQLClient, job_id: str, expected: Decimal, within: float = 20.0
) -> dict[str, Any]:
    """Poll the job until its provisional figure is `expected`."""
    deadline = time.monotonic() + within
    while True:
        job = await _job(gql, job_id)
        figure = job["provisionalCredits"]
        if figure is not None and Decimal(figure) == expected:
            return job
        if time.monotonic() > deadline or job["status"] in ("SUCCEEDED", "FAILED"):
            raise AssertionError(f"provisional credits never reached {expected}: {job}")
        await asyncio.sleep(0.05)


class TestBadInput:
    async def test_refused_input_writes_no_job(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        cases = [
            (FACTS, {"tenantId": "t1", "userId": "u1", "text": []}, "BAD_USER_INPUT"),
            (
                FACTS,
                {"tenantId": "t1", "userId": "u1", "text": [" "]},
                "BAD_USER_INPUT",
            ),
            (FACTS, {"tenantId": "", "userId": "u1", "text": ["x"]}, "BAD_USER_INPUT"),
            (
                CODING,
                {"tenantId": "t1", "userId": "u1", "system": ["cpt"]},
                "BAD_USER_INPUT",
            ),
            (
                CODING,
                {"tenantId": "t1", "userId": "u1", "system": [], "text": ["x"]},
                "BAD_USER_INPUT",
            ),
            (
                CODING,
                {
                    "tenantId": "t1",
                    "userId": "u1",
                    "system": ["cpt"],
                    "text": ["x"],
                    "maxCandidates": -1,
                },
                "BAD_USER_INPUT",
            ),
        ]
        for query, fields, code in cases:
            body = await gql(query, {"in": fields})
            assert codes(body) == [code], (fields, body)
            assert "Traceback" not in str(body)
        body = await upload(gql, DICTATION, {"tenantId": "t1", "userId": "u1"}, b"")
        assert codes(body) == ["BAD_USER_INPUT"]
        other = await make_key(db, "ingest", "t2")
        body = await gql(
            FACTS, {"in": {"tenantId": "t1", "userId": "u1", "text": ["x"]}}, key=other
        )
        assert codes(body) == ["FORBIDDEN"]
        assert await _jobs(db) == 0

    async def test_a_document_to_code_must_be_the_tenants(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        for interaction, tenant in (("i-t1", "t1"), ("i-t2", "t2")):
            await gql.data(REGISTER, {"i": interaction, "t": tenant, "u": "u1"})
            await gql.data(
                RECORD_DOCUMENT, {"i": interaction, "x": f"doc-{tenant}", "c": "1"}
            )
        bound = await make_key(db, "ingest", "t1")

        def coding(document_id: str) -> dict[str, Any]:
            return {
                "in": {
                    "tenantId": "t1",
                    "userId": "u1",
                    "system": ["cpt"],
                    "documentId": document_id,
                }
            }

        for document_id, key in (
            ("doc-t2", bound),  # another tenant's document
            ("doc-unknown", bound),  # one the ledger does not know
            ("doc-t2", None),  # another tenant's, even for an unbound key
        ):
            body = await gql(CODING, coding(document_id), key=key)
            assert codes(body) == ["BAD_USER_INPUT"], (document_id, body)
        assert await _jobs(db) == 0
        # The tenant's own document; an unknown one for an unbound key
        # (documents made outside this service).
        own = await gql(CODING, coding("doc-t1"), key=bound)
        assert job_of(own)["status"] == "QUEUED", own
        outside = await gql(CODING, coding("doc-elsewhere"))
        assert job_of(outside)["status"] == "QUEUED", outside
        assert await _jobs(db) == 2

    async def test_an_enforced_budget_refuses_the_new_jobs(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        await gql.data(
            """mutation { recordFactsUsage(input: {requestId: "r-1", creditsConsumed: "2",
            tenantId: "t1", userId: "u1"}) { id } }"""
        )
        await set_budget(gql, tenantId="t1", period="DAY", limit="1", enforce=True)
        for query, fields in (
            (FACTS, {"tenantId": "t1", "userId": "u1", "text": ["x"]}),
            (
                CODING,
                {"tenantId": "t1", "userId": "u1", "system": ["cpt"], "text": ["x"]},
            ),
        ):
            assert codes(await gql(query, {"in": fields})) == ["BUDGET_EXCEEDED"]
        body = await upload(
            gql, DICTATION, {"tenantId": "t1", "userId": "u1"}, audio(1)
        )
        assert codes(body) == ["BUDGET_EXCEEDED"]
        assert await _jobs(db) == 0
        # another tenant is not affected
        body = await gql(
            FACTS, {"in": {"tenantId": "t2", "userId": "u1", "text": ["x"]}}
        )
        job_of(body)
        assert await _jobs(db) == 1
        async with db.read() as session:
            assert (
                await session.scalar(select(func.count()).select_from(UsageRecord)) == 1
            )
