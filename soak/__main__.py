"""`make soak`: one bounded soak run (load, faults, callers giving up, SIGTERM, integrity), then
the hostile-input checks (fuzzing at SOAK_FUZZ_EXAMPLES per test); prints the figures and
writes docs/reliability.md. SOAK_HOSTILE=0 skips the second part, SOAK_FLEET=0 the fleet mode
(soak/fleet.py), SOAK_OVERLOAD=0 the overload phase (soak/overload.py), SOAK_WORKERS=0 the
workers phase (soak/workers.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .fleet import FleetConfig, fleet_soak
from .hostile import GROUPS, run_group, section
from .overload import OverloadConfig, overload_soak
from .report import document, figures
from .run import Config, soak
from .workers import WorkersConfig, workers_soak

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def main() -> int:
    config = Config()
    print(f"soak: {config.seconds:g} s, {config.clients} clients")
    result = asyncio.run(soak(config))
    fig = figures(result)
    print("\n".join(fig.lines))
    fleet: list[str] = []
    fleet_ok = True
    if os.environ.get("SOAK_FLEET", "1") != "0":
        print("soak: fleet mode ...", flush=True)
        fleet_figures = asyncio.run(fleet_soak(FleetConfig()))
        fleet = fleet_figures.lines()
        fleet_ok = (
            fleet_figures.failed_calls == 0
            and fleet_figures.identical_pages == fleet_figures.compared_pages
        )
        print("\n".join(fleet))
    overload: list[str] = []
    overload_ok = True
    if os.environ.get("SOAK_OVERLOAD", "1") != "0":
        print("soak: overload phase ...", flush=True)
        overload_figures = asyncio.run(overload_soak(OverloadConfig()))
        overload = overload_figures.lines()
        overload_ok = overload_figures.all_met
        print("\n".join(overload))
    workers: list[str] = []
    workers_ok = True
    if os.environ.get("SOAK_WORKERS", "1") != "0":
        print("soak: workers phase ...", flush=True)
        workers_figures = asyncio.run(workers_soak(WorkersConfig()))
        workers = workers_figures.lines()
        workers_ok = workers_figures.all_met
        print("\n".join(workers))
    hostile: list[str] = []
    hostile_ok = True
    if os.environ.get("SOAK_HOSTILE", "1") != "0":
        outcomes = []
        for group in GROUPS:
            print(f"soak: hostile input: {group.name} ...", flush=True)
            outcomes.append(run_group(group))
        hostile, hostile_ok = section(outcomes)
        print("\n".join(hostile))
    all_met = fig.all_met and hostile_ok and fleet_ok and overload_ok and workers_ok
    DOC.write_text(document(result, fig, fleet + overload + workers + hostile, all_met=all_met))
    print(f"soak: wrote {DOC}")
    if not fig.all_met:
        print("soak: some expectations were NOT met; serve log tail:\n" + result.log_tail[-2000:])
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
