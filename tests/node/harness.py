"""Running the Node.js client scripts (tests/node, tests/browser) from pytest: find node and the
npm packages (root package.json, installed by `npm ci`), build the web client, and run a script
that prints one JSON object as its last line of stdout."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO_ROOT / "node_modules"
WEB_CLIENT = REPO_ROOT / "client" / "web"
WEB_DIST = WEB_CLIENT / "dist"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is needed for the client tests: put `node` (>= 20) on PATH")
    return found


def require_packages(*names: str) -> None:
    missing = [name for name in names if not (NODE_MODULES / name / "package.json").is_file()]
    if missing:
        pytest.fail(f"npm packages missing ({', '.join(missing)}): run `npm ci` at the repo root")


def build_web_client() -> Path:
    """Bundles client/web into client/web/dist (esbuild, a fraction of a second)."""
    require_packages("esbuild", "@connectrpc/connect-web", "@bufbuild/protobuf", "thumbhash")
    done = subprocess.run(
        [node(), str(WEB_CLIENT / "build.mjs")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"building client/web failed:\n{done.stdout}\n{done.stderr}")
    return WEB_DIST


async def run_node(script: Path, env: Mapping[str, str], *, time_limit: float) -> dict[str, Any]:
    """Runs `node script` without blocking the event loop (the servers it calls run in this
    loop) and returns the JSON object on its last line of stdout."""
    proc = await asyncio.create_subprocess_exec(
        node(),
        str(script),
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), time_limit)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        pytest.fail(
            f"{script.name} did not finish in {time_limit:.0f} s\n"
            f"stdout:\n{out.decode(errors='replace')}\nstderr:\n{err.decode(errors='replace')}"
        )
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        pytest.fail(
            f"{script.name} exited {proc.returncode} without a JSON result\n"
            f"stdout:\n{stdout}\nstderr:\n{stderr}"
        )
    result.setdefault("exit_code", proc.returncode)
    if stderr.strip():
        result.setdefault("stderr", stderr[-4000:])
    return result
