"""A small Lambda Runtime API (the interface `awslambdaric` polls inside the container) on a
loopback port: `GET /2018-06-01/runtime/invocation/next` hands out queued events (blocking until
one is queued, as Lambda does between invocations); `POST .../invocation/{id}/response`,
`.../invocation/{id}/error` and `/2018-06-01/runtime/init/error` are recorded for the test.
Only the standard library: a ThreadingHTTPServer in a daemon thread."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast

_HOST = "127.0.0.1"  # loopback only
_PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:photovault"
TRACE_ID = "Root=1-6752a1f0-0a5b3c7e2f1d4e6a8b9c0d1e;Parent=53995c3f42cd8ad8;Sampled=0"
# How long an invocation may run, as Lambda's deadline header tells the runtime.
INVOCATION_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Outcome:
    """What the runtime posted for one invocation."""

    kind: Literal["response", "error"]
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class InitError:
    body: bytes
    headers: dict[str, str]


class RuntimeExited(AssertionError):
    """The runtime process died while an invocation was outstanding."""


@dataclass
class _State:
    pending: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    results: dict[str, Outcome] = field(default_factory=dict)
    init_errors: list[InitError] = field(default_factory=list)
    handed_out: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: threading.Event = field(default_factory=threading.Event)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1: the runtime client (libcurl) keeps its connection alive between calls.
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> _State:
        return cast(_Server, self.server).state

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def do_GET(self) -> None:
        if self.path != f"{_PREFIX}/invocation/next":
            self._reply(404, {"errorMessage": f"unknown path {self.path}"})
            return
        while not self.state.closed.is_set():
            try:
                request_id, body = self.state.pending.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.state.changed:
                self.state.handed_out.append(request_id)
            deadline_ms = int(time.time() * 1000) + INVOCATION_TIMEOUT_MS
            self._reply(
                200,
                body,
                {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": TRACE_ID,
                },
            )
            return
        self.close_connection = True  # shutting down: leave the poll unanswered

    def do_POST(self) -> None:
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items()}
        parts = self.path.removeprefix(_PREFIX).strip("/").split("/")
        if parts == ["init", "error"]:
            with self.state.changed:
                self.state.init_errors.append(InitError(body, headers))
                self.state.changed.notify_all()
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            request_id, kind = parts[1], cast(Literal["response", "error"], parts[2])
            with self.state.changed:
                if request_id not in self.state.handed_out:
                    self._reply(400, {"errorMessage": f"unknown request id {request_id}"})
                    return
                if request_id in self.state.results:
                    self._reply(400, {"errorMessage": f"{request_id} already answered"})
                    return
                self.state.results[request_id] = Outcome(kind, body, headers)
                self.state.changed.notify_all()
        else:
            self._reply(404, {"errorMessage": f"unknown path {self.path}"})
            return
        self._reply(202, {"status": "OK"})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(
        self, status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeRuntimeAPI:
    """`with FakeRuntimeAPI() as api:` serves on `api.address` (for AWS_LAMBDA_RUNTIME_API)."""

    def __init__(self) -> None:
        self._state = _State()
        self._server = _Server((_HOST, 0), _Handler)
        self._server.state = self._state
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def init_errors(self) -> list[InitError]:
        with self._state.changed:
            return list(self._state.init_errors)

    @property
    def outcomes(self) -> dict[str, Outcome]:
        with self._state.changed:
            return dict(self._state.results)

    @property
    def handed_out(self) -> list[str]:
        with self._state.changed:
            return list(self._state.handed_out)

    def __enter__(self) -> FakeRuntimeAPI:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state.closed.set()  # releases any blocked `next` poll within 0.2 s
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def invoke(self, event: Any) -> str:
        """Queues one invocation; returns its request id."""
        request_id = str(uuid.uuid4())
        self._state.pending.put((request_id, json.dumps(event).encode()))
        return request_id

    def wait(
        self, request_id: str, timeout: float, alive: Callable[[], bool] = lambda: True
    ) -> Outcome:
        """The runtime's answer to one invocation, waiting at most `timeout` seconds; fails
        early if `alive()` turns false (the runtime process exited) or an init error arrives."""
        deadline = time.monotonic() + timeout
        with self._state.changed:
            while request_id not in self._state.results:
                if self._state.init_errors:
                    raise RuntimeExited(f"init error: {self._state.init_errors[0].body!r}")
                if not alive():
                    raise RuntimeExited(f"the runtime exited before answering {request_id}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer to {request_id} within {timeout} s")
                self._state.changed.wait(min(left, 0.1))
            return self._state.results[request_id]

    def call(
        self, event: Any, timeout: float = 15.0, alive: Callable[[], bool] = lambda: True
    ) -> Outcome:
        return self.wait(self.invoke(event), timeout, alive)
