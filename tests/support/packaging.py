"""Building and installing this project's wheels with uv, as the packaging tests do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300.0  # a cold uv cache downloads hatchling and every runtime dependency


def uv() -> str:
    """The uv next to this interpreter (make installs it into the venv), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    assert found, "uv is needed to build and install the wheel (make installs it into .venv)"
    return found


def run(args: list[str], timeout: float) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def build_wheel(dist: Path) -> Path:
    """The project's wheel, built as the image builds it, into the empty folder `dist`."""
    run([uv(), "build", "--wheel", "--out-dir", str(dist), str(PROJECT_ROOT)], BUILD_TIMEOUT)
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]
