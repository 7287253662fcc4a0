"""The hostile-input and integrity checks of `make test`, run again by `make soak` so that
docs/reliability.md states what they proved on this machine: each group is one pytest run with
its JUnit XML read back (tests, failures, time), the fuzzing at SOAK_FUZZ_EXAMPLES examples
per test with hypothesis' own count of the examples it ran."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FUZZ_EXAMPLES = int(os.environ.get("SOAK_FUZZ_EXAMPLES", "10000"))


@dataclass(frozen=True)
class Group:
    name: str
    checks: str
    args: tuple[str, ...]
    fuzz: bool = False


GROUPS = (
    Group(
        "Property-based fuzzing",
        "hypothesis draws every RPC's request fields (NUL and bidi controls, 10 KB strings, "
        "`../`, near-miss ids, int64 edges, unknown enums, out-of-range timestamps, huge "
        "repeated fields, random masks), hostile tokens, random request bytes, random gRPC-web "
        "frames, 10 MB headers: never INTERNAL/UNKNOWN/UNAVAILABLE, never a 5xx from the "
        "gateway, no row or object written for a rejected request",
        ("tests/test_fuzz_rpcs.py",),
        fuzz=True,
    ),
    Group(
        "gRPC-web and Connect bytes",
        "truncated frames, lying length prefixes, a 2 GiB length prefix, bad base64, wrong "
        "content types and methods, messages at and over 4 MiB, bodies over the cap, bad "
        "`-bin` metadata, malformed deadlines: a clean status in the caller's protocol",
        (
            "tests/test_gateway_grpc_web_requests.py",
            "tests/test_gateway_grpc_web_replies.py",
            "tests/test_gateway_metadata.py",
            "tests/test_gateway_connect.py",
            "tests/test_gateway_cors.py",
            "-k",
            "framing or base64 or padding or content_types or 405 or 4mib or cap or bin_metadata"
            " or malformed or unknown_method or bad_json or bad_proto or compressed",
        ),
    ),
    Group(
        "Slow clients",
        "silent and trickling connections closed at the header deadline (also after a "
        "keep-alive wait), stalled bodies answered and closed, 200 slow clients while others "
        "are served",
        ("tests/test_slow_clients.py",),
    ),
    Group(
        "Tokens",
        "alg `none`, HS256 signed with the RSA public key (algorithm confusion), expired, not "
        "yet valid, wrong issuer or audience, no `sub`, garbage, JWKS key rotation: "
        "UNAUTHENTICATED",
        ("tests/test_auth.py", "tests/test_grpc_errors.py", "-k", "token or jwks or issuer"),
    ),
    Group(
        "Isolation",
        "a second user tries every RPC on the first one's photo ids and upload ids: NOT_FOUND, "
        "like an unknown id, and nothing changes",
        ("tests/test_grpc_errors.py", "-k", "another_users or malformed_vs_unknown"),
    ),
    Group(
        "Uploads",
        "other type or size than declared, overwriting a stored object, an expired URL, "
        "tampered signatures (LocalStack, which enforces them); SVG/HTML types, `../` and "
        "control characters in names; concurrent uploads that together exceed the quota",
        (
            "tests/test_s3_signatures.py",
            "tests/test_grpc_errors.py",
            "-k",
            "s3 or upload or quota",
        ),
    ),
    Group(
        "Callers giving up, shutdown",
        "expired deadlines, cancellations, closed channels and hung-up HTTP clients leave no "
        "task, pool connection or descriptor; calls abandoned while holding a connection give "
        "it back with nothing half-written; lame duck, drain and refusal at shutdown",
        ("tests/test_leaks.py", "tests/test_shutdown.py"),
    ),
)


@dataclass(frozen=True)
class Outcome:
    group: Group
    tests: int
    failed: int
    skipped: int
    seconds: float
    examples: dict[str, tuple[int, str]]  # fuzz test -> examples generated, why it stopped
    command: str


_BLOCK = re.compile(r"^tests/\S+::(\w+):\n(.*?)(?=^tests/\S+::|\Z)", re.S | re.M)
_GENERATED = re.compile(r"during generate phase.*?(\d+) passing", re.S)
_STOPPED = re.compile(r"Stopped because (.+)")


def _examples(stats: str) -> dict[str, tuple[int, str]]:
    """hypothesis' statistics: test -> (passing examples generated, why it stopped)."""
    found = {}
    for name, block in _BLOCK.findall(stats):
        generated = _GENERATED.search(block)
        stopped = _STOPPED.search(block)
        if generated:
            found[name] = (int(generated.group(1)), stopped.group(1).strip() if stopped else "")
    return found


def run_group(group: Group) -> Outcome:
    env = {**os.environ}
    if group.fuzz:
        env["PHOTOVAULT_FUZZ_EXAMPLES"] = str(FUZZ_EXAMPLES)
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        args = ["-q", "-p", "no:cacheprovider", *group.args]
        if group.fuzz:
            args.append("--hypothesis-show-statistics")
        done = subprocess.run(  # noqa: S603 - our own test suite
            [str(REPO / ".venv" / "bin" / "python"), "-m", "pytest", f"--junitxml={xml}", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        root = ET.parse(xml).getroot()  # noqa: S314 - our own pytest's file
    suite = root.find("testsuite") if root.tag == "testsuites" else root
    if suite is None:
        raise RuntimeError(f"no test suite in pytest's report:\n{done.stdout[-2000:]}")
    tests = int(suite.get("tests", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    examples = _examples(done.stdout)
    prefix = f"PHOTOVAULT_FUZZ_EXAMPLES={FUZZ_EXAMPLES} " if group.fuzz else ""
    quoted = " ".join(f"'{a}'" if " " in a else a for a in group.args)
    return Outcome(
        group,
        tests,
        failed,
        skipped,
        float(suite.get("time", 0.0)),
        examples,
        f"{prefix}.venv/bin/python -m pytest {quoted}",
    )


def section(outcomes: list[Outcome]) -> tuple[list[str], bool]:
    lines = [
        "## Hostile input",
        "",
        "The hostile-input checks of `make test`, run again here (each group one pytest run; "
        f"the fuzzing at {FUZZ_EXAMPLES:,} examples per test instead of make test's 40).",
        "",
        "| Group | What it sends, and what must come back | Tests | Failed | Time | Command |",
        "|---|---|---|---|---|---|",
    ]
    ok = True
    for o in outcomes:
        met = o.failed == 0 and o.skipped == 0 and o.tests > 0
        ok = ok and met
        verdict = "0" if met else f"**{o.failed} (skipped {o.skipped})**"
        lines.append(
            f"| {o.group.name} | {o.group.checks} | {o.tests} | {verdict} | {o.seconds:.0f} s "
            f"| `{o.command}` |"
        )
    fuzz = [o for o in outcomes if o.group.fuzz and o.examples]
    for o in fuzz:
        lines += [
            "",
            "Examples hypothesis generated per fuzz test, all passing, and why it stopped "
            "(before max_examples only where the strategy has no more distinct values):",
            "",
            "| Fuzz test | Examples | Stopped because |",
            "|---|---|---|",
            *(f"| {name} | {n:,} | {why} |" for name, (n, why) in o.examples.items()),
        ]
    return lines, ok
