"""The protos in C++: the grpc++ client that scripts/gen_clients.sh generates, built with
Debian's grpc++, protobuf and libcurl (tests/cpp/Makefile, -O0, once per module), runs the whole
flow (tests/cpp/flow.cc) against a real `photovault serve`: upload two photos (the PUT with
libcurl), list them a page at a time, read another user's photo (NOT_FOUND, with the ErrorInfo
reason from the grpc-status-details-bin trailer), delete one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.images import jpeg
from .support.native_clients import (
    CPP_TOOLCHAIN,
    REPO_ROOT,
    Upload,
    check_flow,
    generate_clients,
    require_debian_packages,
    run_flow,
    run_step,
)
from .support.users import User, upload_photo


@pytest.fixture(scope="module")
def cpp_flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flow program, generated and built once for the module (both cores for the compiles
    of the generated files, the slow part)."""
    require_debian_packages("C++", CPP_TOOLCHAIN)
    generated = generate_clients(tmp_path_factory.mktemp("cpp-client"))
    build = generated / "build"
    run_step(
        "building the C++ client",
        [
            "make",
            "-C",
            str(REPO_ROOT / "tests" / "cpp"),
            f"GEN={generated / 'cpp'}",
            f"BUILD={build}",
            "-j2",
        ],
        time_limit=900,
    )
    return build / "flow"


async def test_cpp_client_does_the_whole_flow(
    cpp_flow: Path,
    served_port: int,
    served_stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
    bob: User,
    tmp_path: Path,
) -> None:
    bobs = await upload_photo(served_stub, http, bob, jpeg((5, 4)))
    uploads = [
        Upload.written(tmp_path / "harbour.jpg", jpeg((10, 7))),
        Upload.written(tmp_path / "lighthouse.jpg", jpeg((7, 10), rgb=(20, 90, 160))),
    ]

    events = await run_flow(cpp_flow, served_port, alice, bobs.id, uploads)

    await check_flow(
        events,
        stub=served_stub,
        http=http,
        user=alice,
        other_photo_id=bobs.id,
        uploads=uploads,
        tag="cpp",
    )
