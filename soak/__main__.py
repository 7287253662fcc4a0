"""`make soak`: one bounded soak run (load, faults, callers giving up, SIGTERM, integrity), then
the hostile-input checks (fuzzing at SOAK_FUZZ_EXAMPLES per test); prints the figures and
writes docs/reliability.md. SOAK_HOSTILE=0 skips the second part, SOAK_FLEET=0 the fleet mode
(soak/fleet.py), SOAK_OVERLOAD=0 the overload phase (soak/overload.py), SOAK_WORKERS=0 the
workers phase (soak/workers.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from .fleet import FleetConfig, fleet_soak
from .hostile import GROUPS, run_group, section
from .overload import OverloadConfig, overload_soak
from .report import document, figures
from .run import Config, soak
from .workers import WorkersConfig, workers_soak

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


class Figures(Protocol):
    @property
    def all_met(self) -> bool: ...

    def lines(self) -> list[str]: ...


def _phase(
    switch: str, what: str, run: Callable[[], Coroutine[Any, Any, Figures]]
) -> tuple[list[str], bool]:
    """One optional phase (off with `switch`=0): its markdown lines and whether it met all."""
    if os.environ.get(switch, "1") == "0":
        return [], True
    print(f"soak: {what} ...", flush=True)
    figures = asyncio.run(run())
    print("\n".join(figures.lines()))
    return figures.lines(), figures.all_met


def main() -> int:
    config = Config()
    print(f"soak: {config.seconds:g} s, {config.clients} clients")
    result = asyncio.run(soak(config))
    fig = figures(result)
    print("\n".join(fig.lines))
    fleet, fleet_ok = _phase("SOAK_FLEET", "fleet mode", lambda: fleet_soak(FleetConfig()))
    overload, overload_ok = _phase(
        "SOAK_OVERLOAD", "overload phase", lambda: overload_soak(OverloadConfig())
    )
    workers, workers_ok = _phase(
        "SOAK_WORKERS", "workers phase", lambda: workers_soak(WorkersConfig())
    )
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
