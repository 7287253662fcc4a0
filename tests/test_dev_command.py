"""`photovault dev` (what `make dev` runs) on a machine where neither Postgres nor Redis answer:
it must start the embedded stand-ins, migrate, print a token, and serve a real upload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .support.cli import GRPCURL
from .support.images import png
from .support.loopback import closed_port

PHOTOVAULT = str(Path(sys.executable).parent / "photovault")


def test_dev_runs_on_embedded_backends(tmp_path: Path) -> None:
    grpc_port, s3_port = closed_port(), closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTOVAULT_", "AWS_"))}
    env.update(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed_port()}/photovault",
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        PHOTOVAULT_GRPC_ADDR=f"127.0.0.1:{grpc_port}",
        PHOTOVAULT_HTTP_ADDR=f"127.0.0.1:{closed_port()}",
        PHOTOVAULT_METRICS_ADDR="",
        PHOTOVAULT_LOG_FORMAT="json",
    )
    proc = subprocess.Popen(
        [PHOTOVAULT, "dev", "--s3-port", str(s3_port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while "serving" not in "".join(lines[-1:]):
            line = proc.stdout.readline()
            assert line, "photovault dev exited:\n" + "".join(lines)
            lines.append(line)
            assert time.monotonic() < deadline
        output = "".join(lines)
        assert "starting an embedded one (.dev/postgres)" in output
        assert "starting an embedded one (fakeredis)" in output
        token = lines[lines.index(next(x for x in lines if "token for user" in x)) + 2].strip()

        def call(method: str, body: dict[str, object]) -> dict[str, Any]:
            result = subprocess.run(
                [
                    GRPCURL,
                    "-plaintext",
                    "-H",
                    f"authorization: Bearer {token}",
                    "-d",
                    json.dumps(body),
                    f"127.0.0.1:{grpc_port}",
                    f"photovault.v1.PhotoService/{method}",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            return dict(json.loads(result.stdout))

        data = png()
        ticket = call(
            "CreateUploadUrl",
            {"file_name": "p.png", "content_type": "image/png", "size_bytes": len(data)},
        )
        put = httpx.put(
            str(ticket["upload_url"]), content=data, headers=dict(ticket["required_headers"])
        )
        assert put.status_code == 200
        photo = call("ConfirmUpload", {"upload_id": ticket["upload_id"]})["photo"]
        assert httpx.get(photo["url"]).content == data
        assert (tmp_path / ".dev" / "postgres").is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
