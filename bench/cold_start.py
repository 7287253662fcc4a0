"""Lambda cold start: a fresh process importing the handler and serving its first invocation
(a Connect ListPhotos of a page of 100, as a gallery's first call: database, cache and signing;
real Postgres/Redis on loopback), against the bare interpreter's start in the same run; then
the warm invocation latency in that process.

The process sees what the image holds: the wheel and its runtime dependencies only, installed
into a task root (as the Dockerfile does), bytecode compiled, run with `python -I -S`."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
init_cpu = time.process_time()
assert response["statusCode"] == 200, response
rss_first = rss_mib()
warm = []
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    handler(event, Context())
    warm.append((time.perf_counter() - started) * 1000)
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_ms": (t2 - t1) * 1000, "warm": warm,
                  "init_cpu_ms": init_cpu * 1000,
                  "rss_first_mib": rss_first, "rss_after_mib": rss_mib()}))
"""
# Warm invocations per process: the memory goal's count (RSS after them within 10% of after the
# first).
WARM_INVOCATIONS = 1000


@dataclass(frozen=True)
class ColdStart:
    bare_ms: float  # `python -c pass`, wall clock
    import_ms: float
    first_invocation_ms: float
    warm_p50_ms: float
    warm_p95_ms: float
    rss_first_mib: float  # after the first invocation (median over the processes)
    rss_after_mib: float  # after WARM_INVOCATIONS more
    # CPU time of the process until the first answer: as in Lambda (collections paused during
    # the init, lambda_handler.py), and with collections running throughout, interleaved.
    init_cpu_ms: float
    init_cpu_ms_collecting: float
    # Where the init's imports go: `python -X importtime` self times, by top-level package.
    imports: list[tuple[str, float]]

    @property
    def rss_growth(self) -> float:
        return self.rss_after_mib / self.rss_first_mib - 1

    @property
    def gc_saving(self) -> float:
        """The share of the init's CPU time that pausing collections saves."""
        return 1 - self.init_cpu_ms / self.init_cpu_ms_collecting

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
        AWS_LAMBDA_FUNCTION_NAME="photovault-bench",  # as Lambda sets it
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
    collecting = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        bare.append((time.perf_counter() - started) * 1000)
        samples.append(_invoke(root, event, _env(), WARM_INVOCATIONS))
        # The same, outside Lambda as far as the handler can tell: collections never paused.
        env = _env()
        del env["AWS_LAMBDA_FUNCTION_NAME"]
        collecting.append(_invoke(root, event, env, warm=0))
    warm = [ms for r in samples for ms in r["warm"]]
    return ColdStart(
        bare_ms=statistics.median(bare),
        import_ms=statistics.median(r["import_ms"] for r in samples),
        first_invocation_ms=statistics.median(r["first_ms"] for r in samples),
        warm_p50_ms=statistics.median(warm),
        warm_p95_ms=statistics.quantiles(warm, n=20)[-1],
        rss_first_mib=statistics.median(r["rss_first_mib"] for r in samples),
        rss_after_mib=statistics.median(r["rss_after_mib"] for r in samples),
        init_cpu_ms=statistics.median(r["init_cpu_ms"] for r in samples),
        init_cpu_ms_collecting=statistics.median(r["init_cpu_ms"] for r in collecting),
        imports=_imports(root, event),
    )


def _invoke(root: Path, event: dict[str, Any], env: dict[str, str], warm: int) -> dict[str, Any]:
    """The first invocation in a fresh process, then `warm` more."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _CHILD, json.dumps(event), str(root), str(warm)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _imports(root: Path, event: dict[str, Any], top: int = 8) -> list[tuple[str, float]]:
    """Shares of the init's import time (`-X importtime` self times, which include the
    profiler's own cost) by top-level package; the service's own modules as one."""
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-X",
            "importtime",
            "-c",
            _CHILD,
            json.dumps(event),
            str(root),
            "0",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
    )
    by_package: dict[str, float] = {}
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + int(match.group(1))
    total = sum(by_package.values())
    ranked = sorted(by_package.items(), key=lambda item: -item[1])[:top]
    return [(name, us / total) for name, us in ranked]


def chart(cold: ColdStart) -> list[str]:
    """The init's phases against the goal (150 ms) and 12x the bare interpreter."""
    bars = [cold.bare_ms, cold.import_ms, cold.first_invocation_ms, cold.init_ms]
    top = max(*bars, 12 * cold.bare_ms, 150.0) * 1.1
    return [
        "```mermaid",
        "xychart-beta",
        '    title "Lambda cold start, ms (the line: 12x the bare interpreter)"',
        '    x-axis ["bare interpreter", "import", "first invocation", "init"]',
        f'    y-axis "ms" 0 --> {top:.0f}',
        "    bar [" + ", ".join(f"{b:.0f}" for b in bars) + "]",
        "    line [" + ", ".join(f"{12 * cold.bare_ms:.0f}" for _ in bars) + "]",
        "```",
        "",
    ]


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
        f"init CPU time               {cold.init_cpu_ms:7.1f} ms with collections paused, "
        f"{cold.init_cpu_ms_collecting:.1f} ms without ({cold.gc_saving:.0%} less)"
    )
    for name, share in cold.imports:
        print(f"  imports: {name:28s} {share:6.1%}")
    print(
        f"RSS after the first / after {WARM_INVOCATIONS} warm: {cold.rss_first_mib:.1f} / "
        f"{cold.rss_after_mib:.1f} MiB ({cold.rss_growth:+.1%}; goal within 10%)"
    )


if __name__ == "__main__":
    report(measure())
