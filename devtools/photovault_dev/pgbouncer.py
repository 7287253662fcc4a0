"""A real PgBouncer (Debian's `pgbouncer`) in front of a Postgres, for the tests that run the
service behind a transaction-mode pooler, as behind RDS Proxy or a PgBouncer fleet: loopback
only, trust authentication passed through, a fixed number of server connections."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .ports import LOOPBACK, connect, free_port


@dataclass(frozen=True)
class PgBouncer:
    port: int
    database_url: str  # the pooled URL of the database (same name, user)
    admin_url: str  # PgBouncer's own console (SHOW POOLS, SHOW SERVERS, ...)


def _binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        raise RuntimeError("pgbouncer is not installed: apt-get install pgbouncer")
    return found


@contextlib.contextmanager
def pgbouncer(
    database_url: str, *, pool_size: int = 2, pool_mode: str = "transaction"
) -> Iterator[PgBouncer]:
    """PgBouncer for `database_url`'s database; `pool_size` server connections at most."""
    parts = urlsplit(database_url)
    database = parts.path.lstrip("/")
    user = parts.username or "postgres"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pv-pgbouncer-") as workdir:
        directory = Path(workdir)
        (directory / "userlist.txt").write_text(f'"{user}" ""\n')
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{database} = host={parts.hostname or LOOPBACK} port={parts.port or 5432} "
            f"dbname={database} user={user}\n"
            "[pgbouncer]\n"
            f"listen_addr = {LOOPBACK}\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {directory / 'userlist.txt'}\n"
            f"admin_users = {user}\n"
            f"pool_mode = {pool_mode}\n"
            f"default_pool_size = {pool_size}\n"
            f"max_db_connections = {pool_size}\n"
            "max_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits,statement_timeout\n"
            f"logfile = {directory / 'pgbouncer.log'}\n"
        )
        command = [_binary(), str(directory / "pgbouncer.ini")]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            nobody = pwd.getpwnam("nobody")
            os.chown(directory, nobody.pw_uid, nobody.pw_gid)
            for child in directory.iterdir():
                os.chown(child, nobody.pw_uid, nobody.pw_gid)
            command = [_binary(), "-u", "nobody", str(directory / "pgbouncer.ini")]
        proc = subprocess.Popen(  # noqa: S603 - Debian's pgbouncer, our own config
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    connect(LOOPBACK, port, 0.5).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log = directory / "pgbouncer.log"
                        detail = log.read_text(errors="replace") if log.exists() else ""
                        said = proc.stderr.read() if proc.stderr else b""
                        raise RuntimeError(
                            f"pgbouncer did not start: {said!r}\n{detail[-2000:]}"
                        ) from None
                    time.sleep(0.05)
            netloc = f"{user}@{LOOPBACK}:{port}"
            yield PgBouncer(
                port,
                urlunsplit((parts.scheme, netloc, f"/{database}", "", "")),
                urlunsplit((parts.scheme, netloc, "/pgbouncer", "", "")),
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
