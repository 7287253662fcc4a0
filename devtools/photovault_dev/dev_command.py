"""`photovault dev`: the whole service on one machine with nothing but Python.

S3 is moto's server (bucket + browser CORS rule); Postgres and Redis are the ones at the
default URLs when they answer, else embedded stand-ins (data under .dev/). Then migrate, print
the addresses and a dev token, serve the browser gallery (client/web/dist, when built) from its
own origin, and serve the API until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from contextlib import ExitStack
from pathlib import Path

from photovault_dev.postgres import embedded_postgres, postgres_answers
from photovault_dev.redis import embedded_redis, redis_answers
from photovault_dev.s3 import moto_s3
from photovault_server.settings import Settings, default, load_settings

DEV_DIR = Path(".dev")
DEV_BUCKET = "photovault-dev"
DEV_USER = "dev-user"


def _dev_secret() -> str:
    """Kept in .dev/ so tokens minted in one session still work in the next."""
    path = DEV_DIR / "jwt-secret"
    if not path.exists():
        DEV_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _default(name: str) -> str:
    return os.environ.get(name, str(default(Settings, name)))


DEMO_ADDR = ("127.0.0.1", 5173)
DEMO_DIR = Path("client/web/dist")


def _serve_demo(stack: ExitStack) -> str | None:
    """The gallery page on its own origin (so CORS is exercised as in production)."""
    if not (DEMO_DIR / "index.html").exists():
        return None
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(DEMO_ADDR, functools.partial(Quiet, directory=str(DEMO_DIR)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.shutdown)
    return f"http://{DEMO_ADDR[0]}:{DEMO_ADDR[1]}"


def run_dev(port_s3: int = 9000) -> int:
    from photovault_server.adapters.migrations import migrate_database
    from photovault_server.auth import mint_token
    from photovault_server.logs import configure_logging
    from photovault_server.server import run_serving, serve

    with ExitStack() as stack:
        database_url = _default("DATABASE_URL")
        if not postgres_answers(database_url):
            print(f"no Postgres at {database_url}: starting an embedded one (.dev/postgres)")
            database_url = stack.enter_context(embedded_postgres(DEV_DIR / "postgres"))
        redis_url = _default("REDIS_URL")
        if not redis_answers(redis_url):
            print(f"no Redis at {redis_url}: starting an embedded one (fakeredis)")
            redis_url = stack.enter_context(embedded_redis())
        demo = _serve_demo(stack)
        cors = [o for o in os.environ.get("PHOTOVAULT_CORS_ORIGINS", "").split(",") if o]
        if demo and demo not in cors:
            cors.append(demo)
        s3 = stack.enter_context(moto_s3("127.0.0.1", port_s3, DEV_BUCKET, "us-east-1", cors))

        secret = os.environ.get("PHOTOVAULT_JWT_SECRET") or _dev_secret()
        os.environ.update(
            AWS_ACCESS_KEY_ID="dev",
            AWS_SECRET_ACCESS_KEY="dev",  # noqa: S106 (moto accepts any credentials)
            AWS_ENDPOINT_URL_S3=s3,
            AWS_REGION="us-east-1",
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        settings = load_settings(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            PHOTOVAULT_BUCKET=DEV_BUCKET,
            PHOTOVAULT_JWT_SECRET=secret,
            PHOTOVAULT_S3_ADDRESSING_STYLE="path",
            PHOTOVAULT_LOG_FORMAT=os.environ.get("PHOTOVAULT_LOG_FORMAT", "console"),
            PHOTOVAULT_CORS_ORIGINS=",".join(cors),
        )
        configure_logging(settings.log_level, settings.log_format)
        asyncio.run(migrate_database(database_url))
        token = mint_token(secret, DEV_USER, ttl_seconds=7 * 24 * 3600)
        print(
            "\nPhotoVault dev is up\n"
            f"  gRPC      {settings.grpc_addr}   (reflection on: grpcurl -plaintext "
            f"{settings.grpc_addr} list)\n"
            f"  gRPC-web  http://{settings.http_addr}   (and Connect: curl -H 'content-type: "
            "application/json' -H \"authorization: Bearer $TOKEN\" -d '{}' "
            f"http://{settings.http_addr}/photovault.v1.PhotoService/GetAccount)\n"
            + (
                f"  gallery   {demo}/?api=http://{settings.http_addr}&token={token}\n"
                if demo
                else "  gallery   not built (make dev builds it with npm)\n"
            )
            + f"  S3 (moto) {s3}   bucket {DEV_BUCKET}\n"
            f"  Postgres  {database_url}\n"
            f"  Redis     {redis_url}\n"
            f"  token for user {DEV_USER!r} (7 days):\n\n{token}\n\n"
            '  try: .venv/bin/grpcurl -plaintext -H "authorization: Bearer $TOKEN" '
            f"{settings.grpc_addr} photovault.v1.PhotoService/GetAccount\n",
            flush=True,
        )
        run_serving(serve(settings, with_worker=True))  # and the photo processing worker
    return 0
