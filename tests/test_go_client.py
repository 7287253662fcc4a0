"""The protos in Go: the grpc-go client that scripts/gen_clients.sh generates, built offline with
Debian's Go packages (scripts/build_go_client.sh), runs the whole flow (tests/go/flow) against a
real `photovault serve`: upload two photos, list them a page at a time, read another user's
photo (NOT_FOUND, with its ErrorInfo reason), delete one."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.images import jpeg
from .support.native_clients import (
    GO_TOOLCHAIN,
    Upload,
    check_flow,
    generate_clients,
    require_debian_packages,
    run_flow,
    run_step,
)
from .support.users import User, upload_photo


@pytest.fixture(scope="module")
def go_flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flow program, generated and built once for the module."""
    require_debian_packages("Go", GO_TOOLCHAIN)
    generated = generate_clients(tmp_path_factory.mktemp("go-client"))
    program = generated / "flow"
    run_step(
        "building the Go client",
        ["scripts/build_go_client.sh", str(generated), str(program)],
        time_limit=600,
    )
    return program


async def test_go_client_does_the_whole_flow(
    go_flow: Path,
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

    events = await run_flow(go_flow, served_port, alice, bobs.id, uploads)

    await check_flow(
        events,
        stub=served_stub,
        http=http,
        user=alice,
        other_photo_id=bobs.id,
        uploads=uploads,
        tag="go",
    )
