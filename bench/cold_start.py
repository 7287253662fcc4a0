"""Lambda cold start: a fresh process importing the handler and serving its first invocation
(a Connect ListPhotos of a page of 100, as a gallery's first call: database, cache and signing;
real Postgres/Redis on loopback), against the bare interpreter's start in the same run; then
the warm invocation latency in that process.

The process sees what the image holds: the wheel and its runtime dependencies only, installed
into a task root (as the Dockerfile does), bytecode compiled, run with `python -I -S`."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from photovault_server.auth import mint_token

from .list_photos import DATABASE_URL, REDIS_URL, SECRET, USER, prepare_database

EVENT = Path(__file__).resolve().parents[1] / "tests" / "events" / "function_url.json"

TASK_ROOT = Path(__file__).resolve().parents[1] / ".dev" / "bench-task-root"

_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
t0 = time.perf_counter()
from photovault_server.lambda_handler import handler
t1 = time.perf_counter()

class Context:
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self):
        return 30000

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

event = json.loads(sys.argv[1])
response = handler(event, Context())
t2 = time.perf_counter()
assert response["statusCode"] == 200, response
rss_first = rss_mib()
warm = []
for _ in range(WARM_INVOCATIONS):
    started = time.perf_counter()
    handler(event, Context())
    warm.append((time.perf_counter() - started) * 1000)
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_ms": (t2 - t1) * 1000, "warm": warm,
                  "rss_first_mib": rss_first, "rss_after_mib": rss_mib()}))
"""
# Warm invocations per process: the memory goal's count (RSS after them within 10% of after the
# first).
WARM_INVOCATIONS = 1000
_CHILD = _CHILD.replace("WARM_INVOCATIONS", str(WARM_INVOCATIONS))


@dataclass(frozen=True)
class ColdStart:
    bare_ms: float  # `python -c pass`, wall clock
    import_ms: float
    first_invocation_ms: float
    warm_p50_ms: float
    warm_p95_ms: float
    rss_first_mib: float  # after the first invocation (median over the processes)
    rss_after_mib: float  # after WARM_INVOCATIONS more

    @property
    def rss_growth(self) -> float:
        return self.rss_after_mib / self.rss_first_mib - 1

    @property
    def init_ms(self) -> float:
        """What Lambda bills as init plus the first invocation's set-up: import + first call."""
        return self.import_ms + self.first_invocation_ms


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        PHOTOVAULT_BUCKET="photovault-bench",
        PHOTOVAULT_JWT_SECRET=SECRET,
        PHOTOVAULT_LOG_LEVEL="WARNING",
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="AKIDBENCHMARK0000000",
        AWS_SECRET_ACCESS_KEY="bench-secret-key",
    )
    return env


def build_task_root() -> Path:
    """The wheel installed with its runtime dependencies only, bytecode compiled."""
    import platform
    import shutil
    import tempfile

    uv = str(Path(sys.executable).parent / "uv")
    project = Path(__file__).resolve().parents[1]
    shutil.rmtree(TASK_ROOT, ignore_errors=True)
    with tempfile.TemporaryDirectory() as dist:
        subprocess.run([uv, "build", "-q", "--wheel", "--out-dir", dist, str(project)], check=True)
        (wheel,) = Path(dist).glob("*.whl")
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--python",
                sys.executable,
                "--python-platform",
                f"{platform.machine()}-manylinux_2_17",
                "--target",
                str(TASK_ROOT),
                f"{wheel}[server]",
            ],
            check=True,
        )
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", str(TASK_ROOT)], check=True
    )
    return TASK_ROOT


def measure(runs: int = 7) -> ColdStart:
    import asyncio

    root = build_task_root()
    asyncio.run(prepare_database())
    event = json.loads(EVENT.read_text())
    event["headers"]["authorization"] = f"Bearer {mint_token(SECRET, USER)}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = (
        "/photovault.v1.PhotoService/ListPhotos"
    )
    event["body"] = json.dumps({"pageSize": 100})
    bare: list[float] = []
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        bare.append((time.perf_counter() - started) * 1000)
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _CHILD, json.dumps(event), str(root)],
            check=True,
            capture_output=True,
            text=True,
            env=_env(),
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    warm = [ms for r in samples for ms in r["warm"]]
    return ColdStart(
        bare_ms=statistics.median(bare),
        import_ms=statistics.median(r["import_ms"] for r in samples),
        first_invocation_ms=statistics.median(r["first_ms"] for r in samples),
        warm_p50_ms=statistics.median(warm),
        warm_p95_ms=statistics.quantiles(warm, n=20)[-1],
        rss_first_mib=statistics.median(r["rss_first_mib"] for r in samples),
        rss_after_mib=statistics.median(r["rss_after_mib"] for r in samples),
    )


def report(cold: ColdStart) -> None:
    print(f"bare interpreter            {cold.bare_ms:7.1f} ms")
    print(f"import handler              {cold.import_ms:7.1f} ms")
    print(f"first invocation (set-up)   {cold.first_invocation_ms:7.1f} ms")
    print(
        f"init = import + first       {cold.init_ms:7.1f} ms  "
        f"({cold.init_ms / cold.bare_ms:.1f}x bare; goal <= 150 ms and <= 12x)"
    )
    total = cold.bare_ms + cold.init_ms
    print(f"cold process to first reply {total:7.1f} ms  ({total / cold.bare_ms:.1f}x bare)")
    print(
        f"warm invocation             p50 {cold.warm_p50_ms:.2f} ms  p95 {cold.warm_p95_ms:.2f} ms"
    )
    print(
        f"RSS after the first / after {WARM_INVOCATIONS} warm: {cold.rss_first_mib:.1f} / "
        f"{cold.rss_after_mib:.1f} MiB ({cold.rss_growth:+.1%}; goal within 10%)"
    )


if __name__ == "__main__":
    report(measure())
