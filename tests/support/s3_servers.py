"""S3 endpoints for tests: moto (fast, but accepts any presigned URL) and LocalStack (slower, but
validates SigV4 presigned URLs: signature, signed headers, expiry). See docs/s3-endpoints.md."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from photovault_dev.ports import free_port
from photovault_dev.s3 import moto_server

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_SCRIPT = REPO_ROOT / "scripts" / "localstack.sh"
_HOST = "127.0.0.1"  # loopback only: never expose a test server beyond this machine


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run moto's server in a thread on a free loopback port; yield its endpoint URL."""
    with moto_server(_HOST, 0) as endpoint:
        yield endpoint


# No proxies: an http_proxy in the environment must not swallow our loopback health checks.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _s3_ready(endpoint: str) -> bool:
    try:
        with _NO_PROXY_OPENER.open(f"{endpoint}/_localstack/health", timeout=2) as resp:
            body = json.load(resp)
    except (OSError, ValueError):  # refused/reset/timeout (URLError is an OSError) or bad JSON
        return False
    services = body.get("services") if isinstance(body, dict) else None
    return isinstance(services, dict) and services.get("s3") in ("available", "running")


def _log_tail(log_path: Path, limit: int = 4000) -> str:
    try:
        return log_path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    # The script execs Python, but signal the whole group anyway in case anything forked.
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


@contextlib.contextmanager
def localstack_s3_server(
    *,
    install_timeout: float = 600.0,
    startup_timeout: float = 90.0,
    stop_grace: float = 15.0,
) -> Iterator[str]:
    """Run LocalStack (S3 only, signature validation on) on a free loopback port; yield its URL.

    Installs .venv-localstack first if needed (slow once, a no-op afterwards), so that the
    startup timeout measures LocalStack itself rather than pip.
    """
    subprocess.run([str(LOCALSTACK_SCRIPT), "install"], check=True, timeout=install_timeout)
    port = free_port(_HOST)  # LocalStack takes its port from the environment, chosen up front
    endpoint = f"http://{_HOST}:{port}"
    # One temp dir per server for its log and its state (buckets, objects), removed at exit.
    with tempfile.TemporaryDirectory(prefix="localstack-") as work_dir:
        log_path = Path(work_dir) / "localstack.log"
        env = {**os.environ, "LOCALSTACK_DATA_DIR": str(Path(work_dir) / "data")}
        # A file, not a pipe: LocalStack logs every request and a pipe nobody drains would block it.
        with log_path.open("wb") as log:
            # New session => its own process group, which _stop_group can kill as a whole.
            proc = subprocess.Popen(
                [str(LOCALSTACK_SCRIPT), "start", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        try:
            deadline = time.monotonic() + startup_timeout
            while not _s3_ready(endpoint):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"LocalStack exited with {proc.returncode} before S3 was ready:\n"
                        + _log_tail(log_path)
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"LocalStack S3 not ready on {endpoint} after {startup_timeout:g}s:\n"
                        + _log_tail(log_path)
                    )
                time.sleep(0.2)
            yield endpoint
        finally:
            _stop_group(proc, stop_grace)
