"""The lease queue on its own: disjoint claims, lease expiry, fencing, backoff."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from service.db.base import utcnow
from service.db.models import Job
from service.db.session import Database
from service.jobs import queue
from service.jobs.queue import LeaseLost
from service.jobs.records import JobKind
from service.uow import unit_of_work


async def _add_jobs(db: Database, count: int) -> set[uuid.UUID]:
    now = utcnow()
    jobs = [
        Job(
            id=uuid.uuid4(),
            kind=JobKind.DOCUMENT.value,
            status="QUEUED",
            attempts=0,
            payload={},
            state={},
            run_after=now,
            created_at=now,
            updated_at=now,
        )
        for _ in range(count)
    ]
    async with db.write() as session:
        session.add_all(jobs)
    return {job.id for job in jobs}


@pytest.mark.asyncio
class TestClaim:
    async def test_concurrent_claimers_get_disjoint_jobs(self, db: Database) -> None:
        ids = await _add_jobs(db, 60)
        claimed: list[uuid.UUID] = []

        async def claimer(name: str) -> None:
            while True:
                jobs = await queue.claim(db, name, limit=4, lease_seconds=30)
                if not jobs:
                    return
                claimed.extend(job.id for job in jobs)
                await asyncio.sleep(0)

        await asyncio.gather(*(claimer(f"worker-{n}") for n in range(6)))
        assert len(claimed) == len(set(claimed)) == 60
        assert set(claimed) == ids

    async def test_a_claim_is_running_with_one_more_attempt(self, db: Database) -> None:
        (job_id,) = await _add_jobs(db, 1)
        (job,) = await queue.claim(db, "w1", limit=5, lease_seconds=30)
        assert job.id == job_id
        assert job.lease.attempt == 1
        async with db.read() as session:
            row = await session.get(Job, job_id)
        assert row is not None
        assert row.status == "RUNNING"
        assert row.leased_by == "w1"
        assert row.lease_expires_at is not None
        assert await queue.claim(db, "w2", limit=5, lease_seconds=30) == []

    async def test_jobs_due_later_wait(self, db: Database) -> None:
        (job_id,) = await _add_jobs(db, 1)
        (job,) = await queue.claim(db, "w1", limit=1, lease_seconds=30)
        await queue.retry_later(db, job.lease, "503", {}, delay=0.3)
        assert await queue.claim(db, "w1", limit=1, lease_seconds=30) == []
        await asyncio.sleep(0.4)
        (again,) = await queue.claim(db, "w1", limit=1, lease_seconds=30)
        assert again.id == job_id
        assert again.lease.attempt == 2


@pytest.mark.asyncio
class TestLease:
    async def test_an_expired_lease_is_taken_over_and_the_old_holder_fenced(
        self, db: Database
    ) -> None:
        await _add_jobs(db, 1)
        (dead,) = await queue.claim(db, "dead-worker", limit=1, lease_seconds=0.3)
        assert await queue.claim(db, "live-worker", limit=1, lease_seconds=30) == []
        await asyncio.sleep(0.4)
        (taken,) = await queue.claim(db, "live-worker", limit=1, lease_seconds=30)
        assert taken.id == dead.id
        assert taken.lease.attempt == 2
        with pytest.raises(LeaseLost):
            await queue.save_state(db, dead.lease, {"x": 1})
        async with unit_of_work(db) as uow:
            with pytest.raises(LeaseLost):
                await queue.finish(uow, dead.lease, failure=None, state={})
        assert await queue.renew(db, [dead.lease], 30) == set()
        await queue.save_state(db, taken.lease, {"progress": True})

    async def test_renewal_keeps_the_lease(self, db: Database) -> None:
        await _add_jobs(db, 1)
        (job,) = await queue.claim(db, "w1", limit=1, lease_seconds=0.5)
        for _ in range(3):
            await asyncio.sleep(0.25)
            assert await queue.renew(db, [job.lease], 0.5) == {job.id}
        assert await queue.claim(db, "w2", limit=1, lease_seconds=30) == []

    async def test_release_gives_the_job_back_uncounted(self, db: Database) -> None:
        await _add_jobs(db, 1)
        (job,) = await queue.claim(db, "w1", limit=1, lease_seconds=30)
        await queue.release(db, job.lease, {"document_requested": True})
        (again,) = await queue.claim(db, "w2", limit=1, lease_seconds=30)
        assert again.lease.attempt == 1
        assert again.state == {"document_requested": True}
        with pytest.raises(LeaseLost):
            await queue.release(db, job.lease, {})


class TestBackoff:
    def test_exponential_capped_with_jitter(self) -> None:
        delays = [queue.backoff(n, base=1.0, cap=10.0) for n in range(1, 8)]
        assert 0.8 <= delays[0] <= 1.2
        assert 1.6 <= delays[1] <= 2.4
        assert 3.2 <= delays[2] <= 4.8
        assert all(d <= 12.0 for d in delays)
        assert len({queue.backoff(3, base=1.0, cap=10.0) for _ in range(20)}) > 1
