"""The client installs alone into another service: the wheel without extras brings the contract
and photovault_client, none of the service's dependencies, and it calls the running server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from photovault_server.server import RunningServer

from .support.packaging import BUILD_TIMEOUT, build_wheel, run, uv
from .support.users import User

_CALL = r"""
import asyncio, importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
from photovault_client import PhotoVaultClient

async def main():
    async with PhotoVaultClient.grpc(sys.argv[2], token=sys.argv[3]) as pv:
        account = await pv.get_account()
    server_deps = [m for m in ("aioboto3", "asyncpg", "redis", "msgspec", "uvicorn")
                   if importlib.util.find_spec(m) is not None]
    print(json.dumps({"user_id": account.user_id, "server_deps": server_deps}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def client_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("client-package")
    dist, root = base / "dist", base / "site"
    wheel = build_wheel(dist)
    run(
        [uv(), "pip", "install", "--python", sys.executable, "--target", str(root), str(wheel)],
        BUILD_TIMEOUT,
    )
    return root


async def test_the_client_alone_calls_the_service(
    client_root: Path, grpc_server: RunningServer, alice: User
) -> None:
    # Not subprocess.run: the server answers on this event loop, which must keep running.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        "-c",
        _CALL,
        str(client_root),
        f"127.0.0.1:{grpc_server.port}",
        alice.token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=client_root,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()[-3000:]
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    assert report == {"user_id": alice.id, "server_deps": []}
