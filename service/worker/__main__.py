"""`python -m service worker` (or `python -m service.worker`): run queued jobs.

Boots the database engine and the Corti client from Settings (DATABASE_URL,
CORTI_*, WORKER_CONCURRENCY, JOB_LEASE_SECONDS, ...), runs the worker until
SIGTERM or SIGINT, then finishes or releases running jobs and closes both.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from service.config import Settings, get_settings
from service.corti import CortiClient
from service.db.session import Database
from service.logs import configure
from service.worker.runner import Worker


async def run_worker(
    settings: Settings, *, concurrency: int | None = None, worker_id: str | None = None
) -> None:
    """Run a worker with clients built from `settings` until a stop signal."""
    try:
        corti = CortiClient.from_settings(
            settings, max_connections=max(100, 2 * settings.worker_concurrency)
        )
    except ValueError as error:  # missing Corti credentials
        sys.stderr.write(f"worker: {error}\n")
        raise SystemExit(2) from None
    db = Database.from_url(settings.database_url)
    try:
        async with corti:
            worker = Worker(
                db, corti, settings, concurrency=concurrency, worker_id=worker_id
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, worker.stop)
            try:
                await worker.run()
            finally:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
    finally:
        await db.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the worker's options and run it."""
    parser = argparse.ArgumentParser(
        prog="python -m service worker", description="Run queued Corti jobs."
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs run at once (default: WORKER_CONCURRENCY, 32)",
    )
    parser.add_argument(
        "--worker-id", default=None, help="name in jobs.leased_by (default host:pid)"
    )
    args = parser.parse_args(list(argv or []))
    settings = get_settings()
    configure(settings.log_level)
    asyncio.run(
        run_worker(settings, concurrency=args.concurrency, worker_id=args.worker_id)
    )


if __name__ == "__main__":
    main(sys.argv[1:])
