"""What the live feed's NOTIFY payloads cost a batch write, with no database.

`python -m bench.live_payloads [--n N] [--records R]` encodes the payloads of
R records (default 1,000, an `ingestUsage` batch, shaped as the write path has
them: one batch instant, a few interactions and amounts) N times with
`service.live.events.payloads`, parses them back once to check the round trip,
and prints the mean CPU milliseconds per batch, the payloads per batch and
their bytes (JSON, one line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from service.db.base import new_uuid
from service.live.events import parse_payload, payloads
from service.usage.records import StoredRecord


def batch(size: int) -> list[StoredRecord]:
    """`size` records as one ingestUsage call stores them."""
    now = datetime.now(UTC)
    return [
        StoredRecord(
            id=new_uuid(),
            source="TRANSCRIPT",
            external_id=f"transcript-{n:06d}",
            interaction_id=f"interaction-{n % 50}",
            credits=Decimal("0.125") * (1 + n % 4),
            created_at=now,
            received_at=now,
            tenant_id="tenant-1",
            user_id=f"user-{n % 50}",
            writer_tenant_id=None,
        )
        for n in range(size)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    records = batch(args.records)
    chunks = list(payloads(records))
    events = [event for chunk in chunks for event in parse_payload(chunk)]
    assert [(e.id, e.credits) for e in events] == [
        (str(r.id), r.credits) for r in records
    ], "payloads do not round-trip"
    cpu = time.process_time()
    for _ in range(args.n):
        list(payloads(records))
    cpu = time.process_time() - cpu
    result = {
        "records": args.records,
        "cpu_ms_per_batch": round(1000 * cpu / args.n, 3),
        "payloads_per_batch": len(chunks),
        "bytes_per_batch": sum(len(chunk.encode()) for chunk in chunks),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
