"""`make soak`: one bounded soak run; prints the figures and writes docs/reliability.md."""

from __future__ import annotations

import asyncio
from pathlib import Path

from .report import document, figures
from .run import Config, soak

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def main() -> int:
    config = Config()
    print(f"soak: {config.seconds:g} s, {config.clients} clients")
    result = asyncio.run(soak(config))
    fig = figures(result)
    print("\n".join(fig.lines))
    DOC.write_text(document(result, fig))
    print(f"soak: wrote {DOC}")
    if not fig.all_met:
        print("soak: some expectations were NOT met; serve log tail:\n" + result.log_tail[-2000:])
    return 0 if fig.all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
