"""Command line: serve, worker, migrate, keys, demo, corti-sandbox."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from service.config import get_settings


def _serve(args: argparse.Namespace) -> None:
    if args.workers > 1:
        _serve_many(args)
        return
    import uvicorn

    from service.app import create_app
    from service.logs import configure

    settings = get_settings()
    configure(settings.log_level)
    from service.http_protocol import HeaderTimeoutProtocol

    uvicorn.run(
        create_app(settings),
        http=HeaderTimeoutProtocol.with_timeout(settings.header_read_timeout_seconds),
        **_uvicorn_options(args),
    )


def _serve_many(args: argparse.Namespace) -> None:
    """`--workers N`: N processes; /metrics sums their series (multiprocess mode).

    PROMETHEUS_MULTIPROC_DIR must be set before any process imports
    prometheus_client, so it is set here first: a fresh temporary directory
    removed on exit, unless the operator gave one.
    """
    import os
    import shutil
    import tempfile

    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="ledger-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        import uvicorn

        from service.logs import configure

        configure(get_settings().log_level)
        # Each worker process imports the app itself (settings from the environment).
        uvicorn.run(
            "service.app:create_worker_app",
            factory=True,
            workers=args.workers,
            # Each process reads HEADER_READ_TIMEOUT_SECONDS from the environment.
            http="service.http_protocol:HeaderTimeoutProtocol",
            **_uvicorn_options(args),
        )
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


def _uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        # SIGTERM: stop accepting, let requests in flight finish (this long at most),
        # close websockets (1012), then the lifespan shutdown closes the live feed and
        # the database pool.
        "timeout_graceful_shutdown": get_settings().shutdown_timeout_seconds,
    }


def _migrate(_args: argparse.Namespace) -> None:
    from service.migrate import upgrade

    upgrade(get_settings().database_url)


def _keys(args: argparse.Namespace) -> None:
    from service.auth import keys
    from service.auth.principal import Role
    from service.db.session import Database
    from service.errors import AppError
    from service.uow import unit_of_work

    async def run() -> int:
        db = Database.from_url(get_settings().database_url)
        try:
            async with unit_of_work(db) as uow:
                session = uow.session
                if args.keys_command == "create":
                    info, plain = await keys.create_key(
                        session, Role(args.role), args.tenant, args.name
                    )
                    scope = (
                        f"tenant {info.tenant_id}" if info.tenant_id else "all tenants"
                    )
                    sys.stderr.write(
                        f"created {info.role} key {info.prefix} for {scope}\n"
                    )
                    sys.stdout.write(
                        plain + "\n"
                    )  # the key, shown once, as the last line
                elif args.keys_command == "list":
                    for info in await keys.list_keys(session):
                        state = (
                            f"revoked {info.revoked_at:%Y-%m-%d}"
                            if info.revoked_at
                            else "active"
                        )
                        sys.stdout.write(
                            f"{info.prefix}\t{info.id}\t{info.role}\t"
                            f"{info.tenant_id or '*'}\t{state}\t{info.name or ''}\n"
                        )
                elif not await keys.revoke_key(session, args.key):
                    sys.stderr.write(f"no active key {args.key!r}\n")
                    return 1
                else:
                    sys.stderr.write(f"revoked {args.key}\n")
        except AppError as error:
            sys.stderr.write(f"error: {error.message}\n")
            return 2
        finally:
            await db.dispose()
        return 0

    raise SystemExit(asyncio.run(run()))


def _worker(args: argparse.Namespace) -> None:
    from service.worker.__main__ import main as worker_main

    worker_main(args.rest)


def _demo(args: argparse.Namespace) -> None:
    from service.demo import main as demo_main

    demo_main(args.rest)


def _sandbox(args: argparse.Namespace) -> None:
    # The sandbox is a development tool in its own distribution (sandbox/),
    # absent from the service's package and image: imported only here, by name.
    try:
        sandbox = importlib.import_module("corti_sandbox")
    except ModuleNotFoundError as exc:
        if exc.name != "corti_sandbox":
            raise
        sys.stderr.write(SANDBOX_MISSING)
        raise SystemExit(2) from None
    sandbox.run_sandbox(args.rest)


SANDBOX_MISSING = (
    "python -m service corti-sandbox: the Corti sandbox is not installed.\n"
    "It is a development tool, not part of the service (nor of its image);\n"
    "from a checkout, install it with: pip install -e ./sandbox\n"
    "(scripts/run, scripts/test and scripts/check install it into .venv).\n"
)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(prog="python -m service")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the GraphQL API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, help="API processes (e.g. one per core)"
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    key_parser = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = key_parser.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key; prints it last")
    create.add_argument("--role", required=True, choices=["admin", "reader", "ingest"])
    create.add_argument("--tenant", default=None, help="bind the key to one tenant")
    create.add_argument("--name", default=None, help="a label for `keys list`")
    key_commands.add_parser("list", help="list keys (never their secrets)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    key_parser.set_defaults(run=_keys)

    # These two parse their own options (see `--help` of each).
    worker = commands.add_parser(
        "worker", help="run the background worker", add_help=False
    )
    worker.set_defaults(run=_worker)
    demo = commands.add_parser(
        "demo", help="fill an empty database with sample usage", add_help=False
    )
    demo.set_defaults(run=_demo)
    sandbox = commands.add_parser(
        "corti-sandbox", help="run the local Corti stand-in", add_help=False
    )
    sandbox.set_defaults(run=_sandbox)

    args, rest = parser.parse_known_args(argv)
    if args.command not in ("worker", "corti-sandbox", "demo") and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    args.run(args)


if __name__ == "__main__":
    main()
