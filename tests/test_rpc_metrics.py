"""Per-RPC metrics for every transport on one /metrics: calls by method, code and transport
(`grpc_server_handled_total`) and their latency histogram (`grpc_server_handling_seconds`),
recorded once by the call pipeline whatever carried the call."""

from __future__ import annotations

import httpx
from prometheus_client import generate_latest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_server.app import App
from photovault_server.observability import Sources, registry_for

from .support.grpc_status import call_error
from .support.grpc_web import GET_ACCOUNT_FRAME, auth, grpc_web_post
from .support.users import User

SERVICE = 'grpc_service="photovault.v1.PhotoService"'


def scrape(app: App) -> dict[str, float]:
    text = generate_latest(registry_for(Sources.of(app))).decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("grpc_server_"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def handled(method: str, code: str, transport: str) -> str:
    return (
        f'grpc_server_handled_total{{grpc_code="{code}",grpc_method="{method}",{SERVICE},'
        f'transport="{transport}"}}'
    )


async def test_calls_are_counted_per_method_code_and_transport(
    app: App,
    stub: pb_grpc.PhotoServiceAsyncStub,
    web: httpx.AsyncClient,
    alice: User,
) -> None:
    before = scrape(app)
    await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    await call_error(stub.GetPhoto(pb.GetPhotoRequest(id="nope"), metadata=alice.metadata))
    await grpc_web_post(web, "GetAccount", GET_ACCOUNT_FRAME, headers=auth(alice))
    await web.post(
        "/photovault.v1.PhotoService/GetAccount",
        content=b"{}",
        headers={"content-type": "application/json", **auth(alice)},
    )
    await web.post(
        "/photovault.v1.PhotoService/GetAccount",
        content=b"{}",
        headers={"content-type": "application/json"},
    )
    after = scrape(app)

    def grew(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(handled("GetAccount", "OK", "grpc")) == 1
    assert grew(handled("GetPhoto", "INVALID_ARGUMENT", "grpc")) == 1
    assert grew(handled("GetAccount", "OK", "grpc-web")) == 1
    assert grew(handled("GetAccount", "OK", "connect")) == 1
    assert grew(handled("GetAccount", "UNAUTHENTICATED", "connect")) == 1
    # (prometheus_client writes labels sorted by name)
    method = f'grpc_method="GetAccount",{SERVICE}'
    assert grew(f'grpc_server_handling_seconds_count{{{method},transport="connect"}}') == 2
    assert (
        grew(f'grpc_server_handling_seconds_bucket{{{method},le="+Inf",transport="connect"}}') == 2
    )
    assert grew(f'grpc_server_handling_seconds_sum{{{method},transport="connect"}}') > 0
