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
from service.jobs.records import JobKind
from service.logs import configure
from service.memory import freeze_startup_objects
from service.observability import metrics, tracing
from service.observability.endpoint import start_endpoint
from service.worker.runner import Worker


async def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    worker_id: str | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run a worker with clients built from `settings` until a stop signal."""
    try:
        corti = CortiClient.from_settings(
            settings, max_connections=max(100, 2 * settings.worker_concurrency)
        )
    except ValueError as error:  # missing Corti credentials
        sys.stderr.write(f"worker: {error}\n")
        raise SystemExit(2) from None
    tracing.setup("worker")
    db = Database.from_settings(settings)
    metrics.watch_pool(db.engine)
    tracing.instrument_engine(db.engine)
    endpoint = None
    if metrics_port is not None:
        kinds = [kind.value for kind in JobKind]

        async def render() -> bytes:
            return metrics.process_metrics() + await metrics.database_metrics(db, kinds)

        endpoint = await start_endpoint(metrics_host, metrics_port, render)
    try:
        async with corti:
            worker = Worker(
                db, corti, settings, concurrency=concurrency, worker_id=worker_id
            )
            freeze_startup_objects()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, worker.stop)
            try:
                await worker.run()
            finally:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
    finally:
        if endpoint is not None:
            endpoint.close()
        await db.dispose()
        metrics.unwatch_pool(db.engine)
        tracing.shutdown()


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
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve GET /metrics (Prometheus) on this port (default: off)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 in a container)",
    )
    args = parser.parse_args(list(argv or []))
    settings = get_settings()
    configure(settings.log_level)
    asyncio.run(
        run_worker(
            settings,
            concurrency=args.concurrency,
            worker_id=args.worker_id,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
