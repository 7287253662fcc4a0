"""`photovault serve --workers 2` as an operator runs it: two real worker processes behind one
gRPC port and one HTTP port (SO_REUSEPORT), both answering calls, one /metrics summing both,
and SIGTERM draining both with calls in flight."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import psutil
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.cli import serve_env
from .support.grpc_web import GET_ACCOUNT_FRAME, auth, grpc_web_post
from .support.loopback import closed_port
from .support.users import User

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")
# A fresh TCP connection per channel: grpc shares subchannels between equal channels
# otherwise, and SO_REUSEPORT spreads connections, not calls.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
# Calls each on its own connection: the kernel hashes each to a worker, so the chance that
# all land on one of two workers is 2 / 2**24.
CALLS = 24


@dataclass
class Workers:
    proc: subprocess.Popen[str]
    grpc_port: int
    http_port: int
    metrics_port: int
    events: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, predicate: Any, what: str, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in list(self.events) if predicate(e)]
            if found:
                return found
            assert self.proc.poll() is None or time.monotonic() < deadline, what
            assert time.monotonic() < deadline, f"never logged: {what}"
            time.sleep(0.05)

    def rpc_pids(self, rpc: str) -> list[int]:
        return [e["pid"] for e in list(self.events) if e["event"] == "rpc" and e["rpc"] == rpc]

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text: str = answer.read().decode()
        return text


def _read_events(stream: Any, events: list[dict[str, Any]]) -> None:
    for line in stream:
        if line.startswith("{"):
            events.append(json.loads(line))


@pytest.fixture
def workers(
    database_url: str, redis_url: str, s3_endpoint: str, aws_env: None
) -> Iterator[Workers]:
    grpc_port, http_port, metrics_port = closed_port(), closed_port(), closed_port()
    env = serve_env(database_url, redis_url, s3_endpoint, grpc_port, metrics_port)
    env.update(
        PHOTOVAULT_HTTP_ADDR=f"127.0.0.1:{http_port}",
        # The whole server's budget: each worker gets half (20), enough for the calls held.
        PHOTOVAULT_DB_POOL_MAX_SIZE="40",
    )
    proc = subprocess.Popen(
        [PHOTOVAULT, "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Workers(proc, grpc_port, http_port, metrics_port)
    reader = threading.Thread(target=_read_events, args=(proc.stderr, served.events), daemon=True)
    reader.start()
    try:
        served.wait_for(lambda e: e["event"] == "serving" and "workers" in e, "serving")
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)


def _serving(workers: Workers) -> dict[str, Any]:
    return next(e for e in workers.events if e["event"] == "serving" and "workers" in e)


def _metric(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return sum(float(line.rpartition(" ")[2]) for line in lines)


def _handled(method: str, transport: str) -> str:
    return (
        f'grpc_server_handled_total{{grpc_code="OK",grpc_method="{method}",'
        f'grpc_service="photovault.v1.PhotoService",transport="{transport}"}}'
    )


async def _get_account(port: int, user: User) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=OWN_CONNECTION) as channel:
        reply = await pb_grpc.PhotoServiceStub(channel).GetAccount(
            pb.GetAccountRequest(), metadata=user.metadata, timeout=30
        )
    assert reply.account.user_id == user.id


async def _get_account_web(port: int, user: User) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as web:
        answer = await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME, headers=auth(user))
    assert answer.status_code == 200
    assert b"grpc-status: 0" in answer.content


async def test_both_workers_answer_calls_and_metrics_sum_both(
    workers: Workers, alice: User
) -> None:
    serving = _serving(workers)
    assert serving["workers"] == 2
    assert serving["db_pool_max_size"] == 20
    pids = set(serving["pids"])
    assert len(pids) == 2

    for _ in range(CALLS):  # one after another: each its own connection, hashed to a worker
        await _get_account(workers.grpc_port, alice)
    for _ in range(CALLS):
        await _get_account_web(workers.http_port, alice)
    workers.wait_for(lambda e: len(workers.rpc_pids("GetAccount")) >= 2 * CALLS, "every rpc")
    answered_by = workers.rpc_pids("GetAccount")
    assert len(answered_by) == 2 * CALLS
    assert set(answered_by) == pids, "both workers answer calls"

    text = workers.metrics()
    # Each worker counted its own calls; the one /metrics says the whole server's.
    assert _metric(text, _handled("GetAccount", "grpc")) == CALLS
    assert _metric(text, _handled("GetAccount", "grpc-web")) == CALLS
    # Two workers' pools (min size 0: each holds the connections its calls opened).
    assert _metric(text, 'photovault_db_pool_connections{state="open"}') >= 2
    assert _metric(text, 'photovault_redis_breaker_state{state="closed"}') == 2
    assert _metric(text, "process_resident_memory_bytes") > 0


async def test_sigterm_drains_both_workers_with_calls_in_flight(
    workers: Workers, alice: User, database_url: str
) -> None:
    pids = set(_serving(workers)["pids"])
    # A lock on the photos table holds every ListPhotos in its worker's database query.
    blocker = await asyncpg.connect(database_url)
    transaction = blocker.transaction()
    await transaction.start()
    try:
        await blocker.execute("LOCK TABLE photos IN ACCESS EXCLUSIVE MODE")

        async def list_photos() -> pb.ListPhotosResponse:
            target = f"127.0.0.1:{workers.grpc_port}"
            async with grpc.aio.insecure_channel(target, options=OWN_CONNECTION) as channel:
                stub = pb_grpc.PhotoServiceStub(channel)
                reply: pb.ListPhotosResponse = await stub.ListPhotos(
                    pb.ListPhotosRequest(page_size=10), metadata=alice.metadata, timeout=60
                )
                return reply

        calls = [asyncio.create_task(list_photos()) for _ in range(CALLS)]
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'photos'::regclass"
        )
        for _ in range(1000):
            if await blocker.fetchval(waiting) == CALLS:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the calls never reached the locked table")

        workers.proc.send_signal(signal.SIGTERM)
        workers.wait_for(lambda e: e["event"] == "shutting_down", "a worker shutting down")
        await asyncio.sleep(1.5)  # past the lame duck (1 s): the listeners are closing
        assert not any(call.done() for call in calls)
        assert workers.proc.poll() is None, "the parent waits for its workers"
        shutting_down = {e["pid"] for e in workers.events if e["event"] == "shutting_down"}
        assert shutting_down == pids, "the signal reached both workers"
    finally:
        await transaction.rollback()
        await blocker.close()

    replies = await asyncio.gather(*calls)
    assert all(len(reply.photos) == 0 for reply in replies)
    assert await asyncio.to_thread(workers.proc.wait, 30) == 0
    assert set(workers.rpc_pids("ListPhotos")) == pids, "calls in flight in both were answered"
    stopped = [e for e in workers.events if e["event"] == "stopped"]
    assert {e.get("pid") for e in stopped[:-1]} == pids
    assert stopped[-1].get("workers") == 2, "the parent stops last"


async def test_workers_of_a_killed_parent_drain_and_exit(workers: Workers) -> None:
    pids = set(_serving(workers)["pids"])
    workers.proc.kill()  # nothing forwarded: the workers see their parent gone
    workers.proc.wait(10)
    processes = [psutil.Process(pid) for pid in pids]
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, 30)
    assert not alive, "workers outlived their parent"
    # Orphans, their exit status is init's: their logs (still on our pipe) say they drained.
    stopped = workers.wait_for(lambda e: e["event"] == "stopped", "stopped")
    assert {e.get("pid") for e in stopped} == pids


async def test_a_worker_that_dies_stops_the_server(workers: Workers) -> None:
    """The parent does not serve on with a worker short: it stops the other (which drains)
    and exits 1, for the orchestrator to restart the whole."""
    dead, other = _serving(workers)["pids"]
    psutil.Process(dead).kill()
    assert await asyncio.to_thread(workers.proc.wait, 30) == 1
    died = workers.wait_for(lambda e: e["event"] == "worker_died", "worker_died")
    assert died[0]["pid"] == dead
    stopped = workers.wait_for(lambda e: e["event"] == "stopped" and "pid" in e, "stopped")
    assert [e["pid"] for e in stopped] == [other]
    assert not psutil.pid_exists(other) or psutil.Process(other).status() == psutil.STATUS_ZOMBIE


def test_serve_runs_on_uvloops_event_loop() -> None:
    """`serve` and every worker run their server through `run_serving`: on uvloop's loop."""
    from photovault_server.server import run_serving

    loops: list[str] = []

    async def main() -> None:
        loops.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    run_serving(main())
    assert loops == ["uvloop"]
