"""The stand-ins of the development tools (devtools/photovault_dev) that `make dev`, the tests and
the soak start, each started for real here. They bind free loopback ports, so the machine's own
Postgres and Redis may be up or down."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import boto3
import pytest
from botocore.exceptions import ClientError
from redis.asyncio import Redis

from photovault_dev import postgres
from photovault_dev.postgres import embedded_postgres, postgres_answers
from photovault_dev.redis import embedded_redis, redis_answers
from photovault_dev.s3 import create_bucket, moto_s3, moto_server

from .support.loopback import closed_port

BUCKET = "photovault-devenv-test"
ORIGIN = "http://localhost:5173"
DEVTOOLS_DIR = Path(__file__).resolve().parents[1] / "devtools"

# No proxies: an http_proxy in the environment must not swallow requests to loopback.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _request(
    url: str, method: str, headers: dict[str, str], data: bytes | None = None
) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with _HTTP.open(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}


def _preflight(url: str, origin: str, method: str = "PUT") -> tuple[int, dict[str, str]]:
    return _request(
        url,
        "OPTIONS",
        {
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,if-none-match,x-amz-checksum-sha256",
        },
    )


def _listed(value: str) -> set[str]:
    return {v.strip().lower() for v in value.split(",")}


# ------------------------------------------------------------------------------------ S3 --


def test_moto_s3_creates_bucket_and_answers_cors_preflight() -> None:
    with moto_s3("127.0.0.1", 0, BUCKET, "eu-west-1", [ORIGIN]) as endpoint:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="eu-west-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.head_bucket(Bucket=BUCKET)
        assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-1"

        status, headers = _preflight(f"{endpoint}/{BUCKET}/users/u1/photos/p.jpg", ORIGIN)
        assert status == 200
        assert headers["access-control-allow-origin"] == ORIGIN
        assert {"get", "put", "head"} <= _listed(headers["access-control-allow-methods"])
        assert {"content-type", "if-none-match", "x-amz-checksum-sha256"} <= _listed(
            headers["access-control-allow-headers"]
        )
        assert "etag" in _listed(headers["access-control-expose-headers"])

        # Another origin is refused, and gets no Access-Control-Allow-Origin to use.
        status, headers = _preflight(f"{endpoint}/{BUCKET}/k.jpg", "http://evil.example")
        assert status == 403
        assert "access-control-allow-origin" not in headers

        # The PUT a browser then sends (presigned) is answered with the CORS headers and ETag.
        url = s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": BUCKET, "Key": "k.jpg", "ContentType": "image/jpeg"},
            ExpiresIn=300,
        )
        status, headers = _request(
            url, "PUT", {"Origin": ORIGIN, "Content-Type": "image/jpeg"}, data=b"\xff\xd8\xff"
        )
        assert status == 200
        assert headers["access-control-allow-origin"] == ORIGIN
        assert "etag" in _listed(headers["access-control-expose-headers"])
        assert headers["etag"].strip('"')


def test_moto_s3_allows_any_origin_when_none_configured() -> None:
    with moto_s3("127.0.0.1", 0, BUCKET + "-any", "us-east-1", []) as endpoint:
        status, headers = _preflight(f"{endpoint}/{BUCKET}-any/k.jpg", "http://anything.test")
        assert status == 200
        assert headers["access-control-allow-origin"] == "http://anything.test"


def test_create_bucket_without_origins_adds_no_cors_rule_and_may_repeat() -> None:
    # As the tests' buckets are made (tests/conftest.py): no CORS rule, no browser allowed.
    with moto_server() as endpoint:
        create_bucket(endpoint, BUCKET + "-plain")
        create_bucket(endpoint, BUCKET + "-plain")  # moto's state outlives a server: no error
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.head_bucket(Bucket=BUCKET + "-plain")
        with pytest.raises(ClientError, match="NoSuchCORSConfiguration"):
            s3.get_bucket_cors(Bucket=BUCKET + "-plain")
        # (moto answers 200 where S3 answers 403; either way the browser gets no permission.)
        _, headers = _preflight(f"{endpoint}/{BUCKET}-plain/k.jpg", ORIGIN)
        assert "access-control-allow-origin" not in headers


def test_moto_s3_fails_fast_when_port_taken() -> None:
    # moto's own start() would wait forever on a failed bind.
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        with (
            pytest.raises(OSError, match="cannot start moto"),
            moto_s3("127.0.0.1", port, BUCKET, "us-east-1", []),
        ):
            pass
        assert time.monotonic() - started < 5


# --------------------------------------------------------------------------------- Redis --


@pytest.mark.parametrize("protocol", [2, 3])
async def test_embedded_redis_serves_redis_asyncio(protocol: int) -> None:
    with embedded_redis() as url:
        assert url.startswith("redis://127.0.0.1:")
        # Served from a background thread of this process.
        assert any(t.name == "embedded-redis" and t.is_alive() for t in threading.enumerate())
        assert redis_answers(url)

        redis = Redis.from_url(url, protocol=protocol)
        try:
            assert await redis.ping() is True
            pxat = int(time.time() * 1000) + 60_000
            # SET key val PXAT ms NX GET: first caller sets (old value nil), second keeps it.
            assert await redis.set("pv:k", "first", pxat=pxat, nx=True, get=True) is None
            assert await redis.set("pv:k", "second", pxat=pxat, nx=True, get=True) == b"first"
            assert await redis.get("pv:k") == b"first"
            assert 0 < await redis.pttl("pv:k") <= 60_000

            async with redis.pipeline(transaction=True) as pipe:
                pipe.set("pv:a", "1", px=60_000)
                pipe.set("pv:b", "2", px=60_000)
                pipe.mget(["pv:a", "pv:b", "pv:k", "pv:missing"])
                pipe.delete("pv:a", "pv:b", "pv:k")
                assert await pipe.execute() == [True, True, [b"1", b"2", b"first", None], 3]

            async with redis.pipeline(transaction=False) as pipe:
                for i in range(50):
                    pipe.set(f"pv:n{i}", i)
                pipe.mget([f"pv:n{i}" for i in range(50)])
                replies = await pipe.execute()
            assert replies[-1] == [str(i).encode() for i in range(50)]
        finally:
            await redis.aclose()
    assert not redis_answers(url)
    assert not any(t.name == "embedded-redis" for t in threading.enumerate())


def test_probes_say_no_where_nothing_listens() -> None:
    port = closed_port()
    assert not redis_answers(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    assert not postgres_answers(f"postgresql://postgres@127.0.0.1:{port}/photovault", timeout=0.5)
    assert not postgres_answers("postgresql://postgres@127.0.0.1:notaport/photovault")
    assert not redis_answers("redis://127.0.0.1:notaport/0")


def test_postgres_probe_tells_redis_from_postgres() -> None:
    with embedded_redis() as url:
        port = url.rsplit(":", 1)[1].split("/")[0]
        url = f"postgresql://postgres@127.0.0.1:{port}/photovault"
        assert not postgres_answers(url, timeout=0.3)


# ------------------------------------------------------------------------------ Postgres --


@pytest.fixture
def pg_parent() -> Iterator[Path]:
    # Not pytest's tmp_path (mode 0700): where root must fall back to running Postgres as
    # `nobody`, that account has to be able to pass through the parent folder.
    parent = Path(tempfile.mkdtemp(prefix="pv-devenv-"))
    parent.chmod(0o711)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


async def _select_one(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == "photovault"
    finally:
        await conn.close()


async def test_embedded_postgres_answers_and_keeps_its_data(pg_parent: Path) -> None:
    data_dir = pg_parent / "pg"
    with embedded_postgres(data_dir) as url:
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        assert url.endswith("/photovault")
        assert postgres_answers(url)
        await _select_one(url)
        conn = await asyncpg.connect(url)
        await conn.execute("create table kept (n int); insert into kept values (42)")
        await conn.close()
    assert not postgres_answers(url)

    # Second start on the same directory: no initdb, the database already exists.
    with embedded_postgres(data_dir) as url:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("select n from kept") == 42
        finally:
            await conn.close()


async def test_embedded_postgres_recovers_from_killed_owner(pg_parent: Path) -> None:
    # A `make dev` killed with SIGKILL leaves its server running on the data directory.
    data_dir = pg_parent / "pg"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from photovault_dev.postgres import embedded_postgres\n"
        "with embedded_postgres(Path(sys.argv[1])) as url:\n"
        "    print(url, flush=True)\n"
        "    time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(DEVTOOLS_DIR)}
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(data_dir), stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert owner.stdout is not None
        orphan_url = (await asyncio.wait_for(owner.stdout.readline(), 60)).decode().strip()
        assert postgres_answers(orphan_url)
    finally:
        owner.kill()
        await owner.wait()
    assert postgres_answers(orphan_url)  # still running, with nobody to stop it

    with embedded_postgres(data_dir) as url:
        assert not postgres_answers(orphan_url)
        await _select_one(url)


def _nobody_can_reach(path: Path) -> bool:
    nobody = pwd.getpwnam("nobody")
    return postgres._traversable_by(path, nobody.pw_uid, nobody.pw_gid)


@pytest.mark.skipif(os.geteuid() != 0, reason="the root fallback only applies to root")
async def test_embedded_postgres_as_root_without_user_namespaces(
    pg_parent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = pg_parent / "pg"
    # As in a container whose seccomp profile forbids user namespaces.
    monkeypatch.setattr(postgres, "_userns_works", lambda uid, gid: False)
    if not _nobody_can_reach(postgres._pg_bin_dir() / "postgres"):
        # A venv inside a private folder (mktemp -d is 0700): a clear error, no chmod of ours.
        with pytest.raises(RuntimeError, match="cannot reach"), embedded_postgres(data_dir):
            pass
        return
    with embedded_postgres(data_dir) as url:
        await _select_one(url)
    assert data_dir.stat().st_uid == pwd.getpwnam("nobody").pw_uid

    # Back with user namespaces, the same directory is handed back to root and still works.
    monkeypatch.undo()
    if postgres._launch_for(postgres._pg_bin_dir(), data_dir).prefix:
        with embedded_postgres(data_dir) as url:
            await _select_one(url)
        assert data_dir.stat().st_uid == 0
