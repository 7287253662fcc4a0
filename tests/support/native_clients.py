"""The Go and C++ clients from pytest: their Debian toolchains, generating and building each
flow program once per session (scripts/gen_clients.sh, scripts/build_go_client.sh,
tests/cpp/Makefile), a real `photovault serve` for them to call, and the checks of what the
programs report against what the Python side sees."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .cli import health_serving, serve_env
from .grpc_status import call_error, details
from .loopback import closed_port
from .users import User

REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTOVAULT = str(Path(sys.executable).parent / "photovault")
GOCODE = Path("/usr/share/gocode/src")

# What each program needs from Debian: a command on PATH or a file, and the package that brings
# it (scripts/test-prerequisites.sh installs the same ones).
GO_TOOLCHAIN = (
    ("go", "golang-go"),
    ("protoc", "protobuf-compiler"),
    ("protoc-gen-go", "protoc-gen-go"),
    ("protoc-gen-go-grpc", "protoc-gen-go-grpc"),
    ("grpc_cpp_plugin", "protobuf-compiler-grpc"),  # scripts/gen_clients.sh generates both
    (str(GOCODE / "google.golang.org/grpc"), "golang-google-grpc-dev"),
    (str(GOCODE / "google.golang.org/protobuf"), "golang-google-protobuf-dev"),
    (
        str(GOCODE / "google.golang.org/genproto/googleapis/rpc/errdetails"),
        "golang-google-genproto-dev",
    ),
    # golang/protobuf 1.4+ (APIv2 underneath): 1.3 cannot decode protoc-gen-go 1.28's messages.
    (
        str(GOCODE / "github.com/golang/protobuf/proto/registry.go"),
        "golang-github-golang-protobuf-1-5-dev",
    ),
)
CPP_TOOLCHAIN = (
    ("protoc", "protobuf-compiler"),
    ("grpc_cpp_plugin", "protobuf-compiler-grpc"),
    ("protoc-gen-go", "protoc-gen-go"),  # scripts/gen_clients.sh generates both languages
    ("protoc-gen-go-grpc", "protoc-gen-go-grpc"),
    ("g++", "g++"),
    ("make", "make"),
    ("pkg-config", "pkg-config"),
    ("/usr/include/grpcpp/grpcpp.h", "libgrpc++-dev"),
    ("/usr/include/google/protobuf/message.h", "libprotobuf-dev"),
    ("curl-config", "libcurl4-openssl-dev"),
)


def require_debian_packages(program: str, toolchain: Sequence[tuple[str, str]]) -> None:
    """Fails (never skips) with one line naming the packages to install."""
    missing: list[str] = []
    for need, package in toolchain:
        present = Path(need).exists() if need.startswith("/") else shutil.which(need) is not None
        if not present and package not in missing:
            missing.append(package)
    if missing:
        pytest.fail(
            f"the {program} client needs Debian packages {' '.join(missing)}: "
            "run scripts/test-prerequisites.sh as root",
            pytrace=False,
        )


def run_step(what: str, command: Sequence[str], *, time_limit: float) -> None:
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=time_limit, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(command)}):\n{done.stdout}\n{done.stderr}")


def generate_clients(out: Path) -> Path:
    """scripts/gen_clients.sh into `out` (out/go, out/cpp); returns `out`."""
    run_step("generating the clients", ["scripts/gen_clients.sh", str(out)], time_limit=120)
    return out


@contextmanager
def photovault_serve(database_url: str, redis_url: str, s3_endpoint: str) -> Iterator[int]:
    """`photovault serve` as a subprocess, once its health says SERVING; yields its gRPC port."""
    port = closed_port()
    proc = subprocess.Popen(
        [PHOTOVAULT, "serve"],
        env=serve_env(database_url, redis_url, s3_endpoint, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not health_serving(port):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "photovault serve did not become SERVING"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@dataclass(frozen=True)
class Upload:
    """An image file the program uploads, and what the service must record for it."""

    path: Path
    data: bytes
    content_type: str = "image/jpeg"

    @property
    def checksum(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()

    @classmethod
    def written(cls, path: Path, data: bytes) -> Upload:
        path.write_bytes(data)
        return cls(path, data)

    def argv(self) -> list[str]:
        return [str(self.path), self.content_type, self.checksum]


async def run_flow(
    program: Path, port: int, user: User, other_photo_id: str, uploads: Sequence[Upload]
) -> list[dict[str, Any]]:
    """Runs the flow program without blocking the event loop; returns its JSON lines."""
    argv = [f"127.0.0.1:{port}", other_photo_id]
    for upload in uploads:
        argv += upload.argv()
    proc = await asyncio.create_subprocess_exec(
        str(program),
        *argv,
        env={"PHOTOVAULT_TOKEN": user.token, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert proc.returncode == 0, (events, err.decode())
    return events


async def check_flow(
    events: list[dict[str, Any]],
    *,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    user: User,
    other_photo_id: str,
    uploads: Sequence[Upload],
    tag: str,
) -> None:
    """What the program reports agrees with the service, as the Python client sees it."""
    kinds = [event["event"] for event in events]
    pages = [event for event in events if event["event"] == "page"]
    assert kinds == ["uploaded"] * len(uploads) + ["page"] * len(pages) + [
        "get_other",
        "deleted",
        "get_deleted",
        "done",
    ], kinds

    uploaded = events[: len(uploads)]
    for event, upload in zip(uploaded, uploads, strict=True):
        assert event["method"] == "PUT"
        assert "x-amz-checksum-sha256" in [name.lower() for name in event["required_headers"]]
        assert event["put_status"] == 200, event
        assert event["file_name"] == upload.path.name
        assert event["size_bytes"] == len(upload.data)
        assert event["checksum_sha256"] == upload.checksum
    ids = [event["photo_id"] for event in uploaded]
    assert len(set(ids)) == len(uploads)

    # One photo a page, the pages chained by the tokens the service handed out.
    assert pages[0]["page_token"] == ""
    for previous, page in itertools.pairwise(pages):
        assert page["page_token"] == previous["next_page_token"] != ""
    assert pages[-1]["next_page_token"] == ""
    assert all(len(page["ids"]) <= 1 for page in pages)
    assert sorted(i for page in pages for i in page["ids"]) == sorted(ids)

    # Another user's photo: NOT_FOUND with the ErrorInfo the Python client reads too.
    seen_by_python = details(
        await call_error(
            stub.GetPhoto(pb.GetPhotoRequest(id=other_photo_id), metadata=user.metadata)
        )
    )
    assert seen_by_python["reason"] == "PHOTO_NOT_FOUND"
    expected_error = {
        "code": grpc.StatusCode.NOT_FOUND.value[0],
        "reason": seen_by_python["reason"],
        "domain": seen_by_python["domain"],
    }
    assert {k: events[-4][k] for k in expected_error} == expected_error

    # The first photo is gone, for the program and for Python; the others are intact.
    assert events[-3]["photo_id"] == ids[0]
    assert {k: events[-2][k] for k in expected_error} == expected_error
    listed = await stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)
    by_id = {photo.id: photo for photo in listed.photos}
    assert sorted(by_id) == sorted(ids[1:])
    for photo_id, upload in zip(ids[1:], uploads[1:], strict=True):
        photo = by_id[photo_id]
        assert list(photo.tags) == [tag]
        assert (await http.get(photo.url)).content == upload.data
