"""The `photovault` command: serve, worker, dev, migrate, sweep, token, and the client commands
(upload, ls, get, rm, account) from photovault_client.cli."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from photovault_server.core import SweepReport
    from photovault_server.settings import DatabaseSettings

# Server modules are imported inside the commands: the client commands work with the client
# alone installed (`pip install photovault[cli]`), without the [server] extra.


def _migrate(settings: DatabaseSettings) -> list[str]:
    """Migrations through DATABASE_MIGRATION_URL when set, else DATABASE_URL, said on stderr;
    refused when that URL goes through a pooler (its transactions do not hold the lock)."""
    from photovault_server.adapters.migrations import behind_a_pooler, migrate_database
    from photovault_server.settings import SettingsError

    url = settings.migration_url
    which = "DATABASE_MIGRATION_URL" if settings.database_migration_url else "DATABASE_URL"
    if asyncio.run(behind_a_pooler(url)):
        raise SettingsError(
            f"{which} goes through a connection pooler, whose transactions cannot hold the "
            "migrations' lock: set DATABASE_MIGRATION_URL to a direct connection"
        )
    print(f"migrating through {which}", file=sys.stderr)
    return [f"{m.version:04d}_{m.name}" for m in asyncio.run(migrate_database(url))]


def cmd_migrate(args: argparse.Namespace) -> int:
    from photovault_server.settings import DatabaseSettings, load_section

    applied = _migrate(load_section(DatabaseSettings))
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run from cron, a Kubernetes CronJob or an EventBridge-scheduled task."""
    from photovault_server.app import open_app
    from photovault_server.settings import load_settings

    async def sweep() -> SweepReport:
        async with open_app(load_settings()) as app:
            return await app.service.sweep(batch=args.batch)

    report = asyncio.run(sweep())
    print(
        f"swept {report.expired_uploads} expired uploads, "
        f"{report.deleted_objects} objects of deleted photos, "
        f"{report.aborted_incomplete_multipart} abandoned multipart uploads, "
        f"{report.deleted_trashed_photos} photos past their time in the trash"
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Processes confirmed photos (variants, metadata) until SIGTERM, then drains."""
    from photovault_server.app import open_app
    from photovault_server.logs import configure_logging
    from photovault_server.settings import load_settings
    from photovault_server.worker import run_worker

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)

    async def work() -> None:
        async with open_app(settings) as app:
            await run_worker(app)

    asyncio.run(work())
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from photovault_server.auth import mint_token
    from photovault_server.settings import AuthSettings, SettingsError, load_section

    try:
        auth = load_section(AuthSettings)
    except SettingsError:
        auth = None
    if auth is None or not auth.jwt_secret:  # JWKS keys are the identity provider's to sign
        print("photovault token: set PHOTOVAULT_JWT_SECRET (32+ characters)", file=sys.stderr)
        return 2
    print(
        mint_token(
            auth.jwt_secret,
            args.user,
            ttl_seconds=args.ttl,
            issuer=auth.jwt_issuer,
            audience=auth.jwt_audience,
        )
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from photovault_server.logs import configure_logging
    from photovault_server.server import run_serving, serve
    from photovault_server.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if args.migrate:
        _migrate(settings)
    from photovault_server.workers import serve_workers, worker_count

    workers = worker_count(args.workers)
    if workers > 1:
        return serve_workers(settings, workers)
    run_serving(serve(settings))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from photovault_dev.dev_command import run_dev

    return run_dev(port_s3=args.s3_port)


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (one per CPU) or more")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photovault", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC server (configured by environment)")
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    serve.add_argument(
        "--workers",
        type=_not_negative,
        default=1,
        help="server processes sharing the ports (0: one per CPU); the database pool is "
        "divided between them",
    )
    serve.set_defaults(func=cmd_serve)

    dev = sub.add_parser("dev", help="run everything locally on embedded defaults")
    dev.add_argument("--s3-port", type=int, default=9000, help="port of the embedded S3")
    dev.set_defaults(func=cmd_dev)

    migrate = sub.add_parser("migrate", help="create or upgrade the schema at DATABASE_URL")
    migrate.set_defaults(func=cmd_migrate)

    sweep = sub.add_parser(
        "sweep",
        help="delete uploads never confirmed in time, and objects of deleted photos left behind",
    )
    sweep.add_argument("--batch", type=_positive, default=1000, help="rows per round")
    sweep.set_defaults(func=cmd_sweep)

    worker = sub.add_parser(
        "worker", help="process confirmed photos (variants, metadata) until SIGTERM, then drain"
    )
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="mint an HS256 token for a user (development)")
    token.add_argument("--user", required=True, help="the user id (the token's sub)")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)

    try:
        from photovault_client.cli import add_client_commands
    except ModuleNotFoundError as exc:  # the [cli] extra (rich) is not installed
        missing = exc.name
        for name in ("upload", "ls", "get", "rm", "account"):
            stub = sub.add_parser(name, help="(needs: pip install 'photovault[cli]')")
            stub.set_defaults(func=lambda _args, m=missing: _needs_cli_extra(m))
    else:
        add_client_commands(sub)
    return parser


def _needs_cli_extra(missing: str | None) -> int:
    print(
        f"photovault: this command needs {missing}: pip install 'photovault[cli]'",
        file=sys.stderr,
    )
    return 2


def _needs_dev_tools(missing: str | None) -> int:
    # photovault_dev (devtools/) and its stand-ins are never in the wheel: only a clone has them.
    print(
        f"photovault dev: needs {missing}, a development tool: in a clone of the repository,"
        " `make dev` installs it (or: pip install -e '.[dev]' -e ./devtools)",
        file=sys.stderr,
    )
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ModuleNotFoundError as exc:
        if args.command == "dev":
            return _needs_dev_tools(exc.name)
        if args.command not in ("serve", "migrate", "sweep", "token", "worker"):
            raise
        print(
            f"photovault {args.command}: needs {exc.name}: pip install 'photovault[server]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if type(exc).__name__ != "SettingsError":  # settings.SettingsError, imported lazily
            raise
        print(f"photovault {args.command}: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
