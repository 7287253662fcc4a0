"""The container entry contract: the image runs `python -m awslambdaric <handler>` (the Runtime
Interface Client), which polls the Lambda Runtime API for invocations and posts the handler's
results back. Here a real awslambdaric process polls a small Runtime API in the test
(tests/support/runtime_api.py) and serves Connect, gRPC-web and hostile events against the real
Postgres, Redis and moto S3; its App (pool, Redis and S3 clients) must be built exactly once."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from photovault.v1 import photo_service_pb2 as pb

from .support.lambda_events import ORIGIN, connect_event, load
from .support.runtime_api import FakeRuntimeAPI, Outcome
from .support.settings import BUCKET, JWT_SECRET
from .support.users import User, new_user

HANDLER = "photovault_server.lambda_handler.handler"
COLD_START_TIMEOUT = 60.0  # first invocation: interpreter, imports, pool, clients
WARM_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


@dataclass
class Runtime:
    api: FakeRuntimeAPI
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    user: User

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, event: Any, timeout: float = WARM_TIMEOUT) -> Outcome:
        try:
            return self.api.call(event, timeout, self.alive)
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{self.output()}") from exc

    def response(self, event: Any) -> dict[str, Any]:
        """The handler's return value, as the runtime posted it to `/response`."""
        outcome = self.call(event)
        assert outcome.kind == "response", f"{outcome.body!r}\n{self.output()}"
        result: dict[str, Any] = outcome.json()
        return result

    def log_events(self) -> list[dict[str, Any]]:
        """The structured log lines (JSON objects with an "event") the process wrote."""
        events = []
        for line in self.stderr.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                events.append(record)
        return events

    def output(self) -> str:
        out = self.stdout.read_text(errors="replace")[-3000:]
        err = self.stderr.read_text(errors="replace")[-3000:]
        return f"--- runtime stdout ---\n{out}\n--- runtime stderr ---\n{err}"


def _runtime_env(
    api: FakeRuntimeAPI, task_root: Path, database_url: str, redis_url: str
) -> dict[str, str]:
    """What Lambda gives the container, plus the function's configuration (as lambda_env), and
    nothing else from this process: no proxies, no PYTHONPATH, no developer settings."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(task_root),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": "photovault",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        # Set by aws_env (moto's S3 on loopback); botocore reads them as in production.
        **{
            name: os.environ[name]
            for name in (
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_REGION",
                "AWS_ENDPOINT_URL_S3",
            )
        },
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PHOTOVAULT_BUCKET": BUCKET,
        "PHOTOVAULT_JWT_SECRET": JWT_SECRET,
        "PHOTOVAULT_S3_ADDRESSING_STYLE": "path",
        "PHOTOVAULT_CORS_ORIGINS": ORIGIN,
        "PHOTOVAULT_LOG_FORMAT": "json",
        "PHOTOVAULT_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def runtime(
    database_url: str, redis_url: str, aws_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    """One execution environment: an awslambdaric process polling the fake Runtime API."""
    base = tmp_path_factory.mktemp("lambda-runtime")
    task_root = base / "task"  # the code itself comes from the venv (the package test covers
    task_root.mkdir()  # installing it into a task root); the cwd holds nothing importable.
    stdout, stderr = base / "stdout.log", base / "stderr.log"
    with (
        FakeRuntimeAPI() as api,
        stdout.open("wb") as out,
        stderr.open("wb") as err,
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", HANDLER],
            cwd=task_root,
            env=_runtime_env(api, task_root, database_url, redis_url),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        try:
            running = Runtime(api, process, stdout, stderr, new_user())
            # The cold start, outside any test's assertions about it.
            first = running.call(connect_event("GetAccount", {}, running.user), COLD_START_TIMEOUT)
            assert first.kind == "response", f"{first.body!r}\n{running.output()}"
            yield running
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)


def test_connect_invocations(runtime: Runtime) -> None:
    for _ in range(5):
        response = runtime.response(connect_event("GetAccount", {}, runtime.user))
        assert response["statusCode"] == 200, response["body"]
        assert response["isBase64Encoded"] is False
        assert response["headers"]["content-type"] == "application/json"
        assert response["headers"]["access-control-allow-origin"] == ORIGIN
        assert json.loads(response["body"])["account"]["userId"] == runtime.user.id


def test_each_invocation_sees_its_own_identity(runtime: Runtime) -> None:
    other = new_user()
    response = runtime.response(connect_event("GetAccount", {}, other))
    assert json.loads(response["body"])["account"]["userId"] == other.id
    response = runtime.response(connect_event("GetAccount", {}, None))
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["code"] == "unauthenticated"


def test_grpc_web_invocation(runtime: Runtime) -> None:
    event = load("rest_v1")
    event["headers"]["Authorization"] = f"Bearer {runtime.user.token}"
    response = runtime.response(event)
    assert response["statusCode"] == 200, response
    assert response["isBase64Encoded"] is True
    body = base64.b64decode(response["body"])
    assert body[0] == 0
    length = int.from_bytes(body[1:5], "big")
    reply = pb.GetAccountResponse.FromString(body[5 : 5 + length])
    assert reply.account.user_id == runtime.user.id
    assert body[5 + length] == 0x80  # the trailers frame
    assert b"grpc-status: 0\r\n" in body[5 + length + 5 :]


@pytest.mark.parametrize(
    ("case", "event", "status"),
    [
        ("not-an-object", [1, 2, 3], 400),
        ("unknown-shape", {"foo": "bar"}, 400),
        (
            "bad-base64",
            {**load("function_url"), "body": "!!!not base64!!!", "isBase64Encoded": True},
            400,
        ),
        (
            "wrong-content-type",
            {**load("function_url"), "headers": {"content-type": "text/html"}},
            415,
        ),
    ],
)
def test_hostile_events_get_an_http_error_not_an_invocation_error(
    runtime: Runtime, case: str, event: Any, status: int
) -> None:
    outcome = runtime.call(event)
    assert outcome.kind == "response", f"{case}: the handler raised: {outcome.body!r}"
    response = outcome.json()
    assert response["statusCode"] == status, response
    assert "Traceback" not in response["body"]
    # And the environment is still good for the next invocation.
    after = runtime.response(connect_event("GetAccount", {}, runtime.user))
    assert after["statusCode"] == 200


def test_logs_carry_the_invocation_request_id(runtime: Runtime) -> None:
    request_id = runtime.api.invoke(connect_event("GetAccount", {}, runtime.user))
    assert runtime.api.wait(request_id, WARM_TIMEOUT, runtime.alive).kind == "response"
    rpcs = [e for e in runtime.log_events() if e["event"] == "rpc"]
    assert [e["lambda_request_id"] for e in rpcs].count(request_id) == 1, runtime.output()
    assert {e["lambda_request_id"] for e in rpcs} <= set(runtime.api.handed_out)


def test_the_app_is_built_once_per_execution_environment(runtime: Runtime) -> None:
    """Cold start once, then warm invocations: one `app_started` line from the process."""
    for _ in range(5):
        assert runtime.response(connect_event("GetAccount", {}, runtime.user))["statusCode"] == 200
    assert runtime.alive(), runtime.output()
    started = [e for e in runtime.log_events() if e["event"] == "app_started"]
    assert len(started) == 1, f"{started}\n{runtime.output()}"
    # Every invocation handed out was answered through `/response`: no `/error`, no init error.
    outcomes = runtime.api.outcomes
    assert set(outcomes) == set(runtime.api.handed_out)
    assert len(outcomes) >= 6
    assert [o.body for o in outcomes.values() if o.kind == "error"] == []
    assert runtime.api.init_errors == []
