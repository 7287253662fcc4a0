"""The Lambda handler driven by real event JSON (tests/events/, shapes from the AWS docs) against
real Postgres, Redis and moto's S3: Connect and gRPC-web through Function URL, HTTP API (with a
JWT authorizer) and REST events; the full upload flow; deadlines; a thawed environment; hostile
events."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import structlog

from photovault.v1 import photo_service_pb2 as pb
from photovault_server import lambda_handler
from photovault_server.lambda_handler import handler

from .support.images import jpeg
from .support.lambda_events import ORIGIN, connect_event, load
from .support.settings import BUCKET, JWT_SECRET
from .support.users import User, new_user


@dataclass
class FakeContext:
    """What the handler reads of Lambda's context object."""

    remaining_ms: int = 30_000
    aws_request_id: str = "5a1c1e4e-2c3b-4b6f-9d0e-3f6a7b8c9d0e"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def _reset_runtime() -> None:
    old = lambda_handler._runtime
    lambda_handler._loop.run_until_complete(old.stack.aclose())
    lambda_handler._runtime = lambda_handler._Runtime()


@pytest.fixture
def lambda_env(database_url: str, redis_url: str, aws_env: None) -> Iterator[None]:
    """The environment a deployed function would have, and a fresh execution environment."""
    saved = dict(os.environ)
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PHOTOVAULT_BUCKET=BUCKET,
        PHOTOVAULT_JWT_SECRET=JWT_SECRET,
        PHOTOVAULT_S3_ADDRESSING_STYLE="path",
        PHOTOVAULT_CORS_ORIGINS=ORIGIN,
        PHOTOVAULT_LOG_LEVEL="WARNING",
    )
    _reset_runtime()
    yield
    _reset_runtime()
    os.environ.clear()
    os.environ.update(saved)
    structlog.reset_defaults()  # the handler configured logging for its process


def call(rpc: str, body: dict[str, Any], user: User) -> dict[str, Any]:
    response = handler(connect_event(rpc, body, user), FakeContext())
    assert response["statusCode"] == 200, response["body"]
    assert response["isBase64Encoded"] is False
    result: dict[str, Any] = json.loads(response["body"])
    return result


def test_connect_json_through_a_function_url_event(lambda_env: None, alice: User) -> None:
    response = handler(connect_event("GetAccount", {}, alice), FakeContext())
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert response["headers"]["access-control-allow-origin"] == ORIGIN
    assert json.loads(response["body"])["account"]["userId"] == alice.id


def test_errors_are_connect_json_with_the_http_status(lambda_env: None) -> None:
    response = handler(connect_event("GetAccount", {}, None), FakeContext())
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["code"] == "unauthenticated"


def test_upload_confirm_list_through_events(
    lambda_env: None, alice: User, http: httpx.AsyncClient
) -> None:
    data = jpeg((4, 4))
    ticket = call(
        "CreateUploadUrl",
        {"fileName": "a.jpg", "contentType": "image/jpeg", "sizeBytes": str(len(data))},
        alice,
    )
    put = httpx.put(ticket["uploadUrl"], content=data, headers=ticket["requiredHeaders"])
    assert put.status_code == 200
    photo = call("ConfirmUpload", {"uploadId": ticket["uploadId"], "tags": ["lambda"]}, alice)
    assert photo["photo"]["id"] == ticket["uploadId"]
    listed = call("ListPhotos", {"tags": ["lambda"]}, alice)
    assert [p["id"] for p in listed["photos"]] == [ticket["uploadId"]]
    assert httpx.get(listed["photos"][0]["url"]).content == data


def test_grpc_web_binary_through_a_rest_event(lambda_env: None, alice: User) -> None:
    event = load("rest_v1")
    event["headers"]["Authorization"] = f"Bearer {alice.token}"
    response = handler(event, FakeContext())
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert "multiValueHeaders" in response
    body = base64.b64decode(response["body"])
    assert body[0] == 0
    length = int.from_bytes(body[1:5], "big")
    reply = pb.GetAccountResponse.FromString(body[5 : 5 + length])
    assert reply.account.user_id == alice.id
    assert body[5 + length] == 0x80
    assert b"grpc-status: 0\r\n" in body[5 + length + 5 :]


def test_grpc_web_text_reply_is_text(lambda_env: None, alice: User) -> None:
    event = connect_event("GetAccount", {}, alice)
    event["headers"]["content-type"] = "application/grpc-web-text"
    event["body"] = base64.b64encode(b"\x00\x00\x00\x00\x00").decode()
    response = handler(event, FakeContext())
    assert response["isBase64Encoded"] is False
    assert response["headers"]["content-type"] == "application/grpc-web-text+proto"
    assert base64.b64decode(response["body"])[0] == 0


@pytest.mark.parametrize("trust", [True, False])
def test_http_api_jwt_authorizer_claims(
    lambda_env: None, trust: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trusted only when configured: otherwise the (here invalid) token is verified again."""
    monkeypatch.setenv("PHOTOVAULT_TRUST_API_GATEWAY_AUTHORIZER", "true" if trust else "false")
    user = new_user()
    event = load("http_api_jwt_authorizer")
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = user.id
    response = handler(event, FakeContext())
    if trust:
        assert response["statusCode"] == 200, response["body"]
        assert json.loads(response["body"])["account"]["userId"] == user.id
    else:
        assert response["statusCode"] == 401


def test_deadline_is_capped_by_the_remaining_time(
    lambda_env: None, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler(connect_event("GetAccount", {}, alice), FakeContext())  # start the environment
    app = lambda_handler._runtime.app
    assert app is not None
    original = app.service.get_account

    async def slow(user_id: str) -> Any:
        import asyncio

        await asyncio.sleep(1.0)
        return await original(user_id)

    monkeypatch.setattr(app.service, "get_account", slow)
    # 600 ms left, 500 ms kept back: the call gets 100 ms and must answer in time.
    response = handler(connect_event("GetAccount", {}, alice), FakeContext(remaining_ms=600))
    assert response["statusCode"] == 504
    assert json.loads(response["body"])["code"] == "deadline_exceeded"


def test_warm_invocations_reuse_one_app(lambda_env: None, alice: User) -> None:
    for _ in range(5):
        call("GetAccount", {}, alice)
    first = lambda_handler._runtime.app
    call("GetAccount", {}, alice)
    assert lambda_handler._runtime.app is first


def test_a_thawed_environment_with_dead_connections_recovers(
    lambda_env: None, alice: User, database_url: str
) -> None:
    call("GetAccount", {}, alice)
    app = lambda_handler._runtime.app
    assert app is not None

    async def kill_backends() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = ''"
            )
            return int(killed)
        finally:
            await conn.close()

    assert lambda_handler._loop.run_until_complete(kill_backends()) >= 1
    # As after a freeze: a long gap since the last invocation.
    lambda_handler._runtime.last_invocation -= lambda_handler.IDLE_RECONNECT_SECONDS + 1
    assert call("GetAccount", {}, alice)["account"]["userId"] == alice.id


HOSTILE: dict[str, tuple[Any, int]] = {
    "not-an-object": ([1, 2, 3], 400),
    "no-request-context": ({"version": "2.0", "rawPath": "/x", "body": ""}, 400),
    "unknown-shape": ({"foo": "bar"}, 400),
    "bad-base64": (
        {**load("function_url"), "body": "!!!not base64!!!", "isBase64Encoded": True},
        400,
    ),
    "wrong-content-type": (
        {**load("function_url"), "headers": {"content-type": "text/html"}},
        415,
    ),
    "get-method": (
        {
            **load("function_url"),
            "requestContext": {**load("function_url")["requestContext"], "http": {"method": "GET"}},
        },
        405,
    ),
    "huge-body": ({**load("function_url"), "body": "x" * (5 * 1024 * 1024)}, 429),
    "headers-not-object": ({**load("function_url"), "headers": ["a"]}, 400),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_events_get_an_http_error(lambda_env: None, case: str) -> None:
    event, status = HOSTILE[case]
    response = handler(event, FakeContext())
    assert response["statusCode"] == status
    assert "Traceback" not in response["body"]


@pytest.mark.parametrize("event_name", ["scheduled_rule", "scheduler_input"])
def test_scheduled_events_sweep_expired_uploads(
    lambda_env: None, alice: User, database_url: str, event_name: str
) -> None:
    data = jpeg((3, 3))
    ticket = call(
        "CreateUploadUrl",
        {"fileName": "a.jpg", "contentType": "image/jpeg", "sizeBytes": str(len(data))},
        alice,
    )

    async def age_and_count(age: bool) -> int:
        conn = await asyncpg.connect(database_url)
        try:
            if age:
                await conn.execute(
                    "UPDATE uploads SET reserved_until = now() - interval '1 day' "
                    "WHERE id = $1::uuid",
                    ticket["uploadId"],
                )
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM uploads WHERE id = $1::uuid", ticket["uploadId"]
                )
            )
        finally:
            await conn.close()

    assert lambda_handler._loop.run_until_complete(age_and_count(True)) == 1
    event = load("scheduled_rule") if event_name == "scheduled_rule" else {"photovault": "sweep"}
    result = handler(event, FakeContext())
    assert result["swept"] >= 1
    assert isinstance(result["aborted_incomplete_multipart"], int)
    assert lambda_handler._loop.run_until_complete(age_and_count(False)) == 0


def test_a_page_of_maximal_photos_is_cut_to_fit_lambdas_response_limit(
    lambda_env: None, alice: User, database_url: str
) -> None:
    """Issue 13, item 8: 500 photos with the longest metadata allowed are more than Lambda's
    6 MB response: the page is cut to fit and carries a next page token, and the pages
    together still hold every photo exactly once, in order."""
    count, emoji = 500, "\U0001f600"  # 4 bytes of UTF-8 each: the most bytes per character

    async def insert() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "INSERT INTO accounts (user_id, create_time) VALUES ($1, now())", alice.id
            )
            await conn.executemany(
                "INSERT INTO photos (id, owner_id, object_key, file_name, content_type, "
                "size_bytes, title, description, tags, visibility, create_time, update_time) "
                "VALUES (gen_random_uuid(), $1, $2, $3, 'image/jpeg', 1, $4, $5, $6, 1, "
                "now() - make_interval(secs => $7), now())",
                [
                    (
                        alice.id,
                        f"users/{alice.id}/photos/{n:04d}.jpg",
                        emoji * 255,
                        emoji * 200,
                        emoji * 2000,
                        [f"{n % 10}{emoji * 49}" + str(t) for t in range(20)],
                        n,
                    )
                    for n in range(count)
                ],
            )
        finally:
            await conn.close()

    lambda_handler._loop.run_until_complete(insert())
    seen: list[str] = []
    token, pages = "", 0
    while True:
        event = connect_event("ListPhotos", {"pageSize": count, "pageToken": token}, alice)
        response = handler(event, FakeContext())
        assert response["statusCode"] == 200, response["body"][:500]
        assert len(response["body"]) <= lambda_handler.MAX_RESPONSE_BYTES
        page = json.loads(response["body"])
        seen += [p["id"] for p in page["photos"]]
        pages += 1
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert pages > 1
    assert len(seen) == len(set(seen)) == count


def test_each_rpc_outcome_is_an_emf_line_with_its_method_code_and_transport(
    lambda_env: None, alice: User, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    handler(connect_event("GetAccount", {}, alice), FakeContext())
    handler(connect_event("GetPhoto", {"id": "not-a-uuid"}, alice), FakeContext())
    records = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and '"_aws"' in line
    ]
    per_rpc = [r for r in records if "Method" in r]
    assert [(r["Method"], r["Code"], r["Transport"]) for r in per_rpc] == [
        ("GetAccount", "OK", "connect"),
        ("GetPhoto", "INVALID_ARGUMENT", "connect"),
    ]
    for record in per_rpc:
        assert record["grpc_server_handled"] == 1
        assert record["grpc_server_handling_ms"] > 0
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["Service", "Method", "Code", "Transport"]]
        assert {m["Name"] for m in directive["Metrics"]} == {
            "grpc_server_handled",
            "grpc_server_handling_ms",
        }


@pytest.mark.parametrize("template", ["function_url", "http_api_jwt_authorizer"])
def test_get_shared_album_through_an_event_without_a_bearer_token(
    lambda_env: None, alice: User, template: str
) -> None:
    """The share link's view needs no token: through a Function URL, and through the HTTP
    API's own route for it, which has no authorizer (deploy/template.yaml), so the event
    carries no claims."""
    data = jpeg((4, 4))
    ticket = call(
        "CreateUploadUrl",
        {"fileName": "secret-name.jpg", "contentType": "image/jpeg", "sizeBytes": str(len(data))},
        alice,
    )
    assert httpx.put(
        ticket["uploadUrl"], content=data, headers=ticket["requiredHeaders"]
    ).is_success
    call("ConfirmUpload", {"uploadId": ticket["uploadId"]}, alice)
    album = call("CreateAlbum", {"title": "shared"}, alice)["album"]
    call("AddAlbumPhotos", {"albumId": album["id"], "photoIds": [ticket["uploadId"]]}, alice)
    expire = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    link = call(
        "CreateShareLink",
        {"albumId": album["id"], "expireTime": expire, "allowOriginal": True},
        alice,
    )["shareLink"]

    event = connect_event("GetSharedAlbum", {"token": link["token"]}, None, template=template)
    event["requestContext"].pop("authorizer", None)
    event["routeKey"] = event["requestContext"]["routeKey"] = (
        "POST /photovault.v1.PhotoService/GetSharedAlbum"
    )
    response = handler(event, FakeContext())
    assert response["statusCode"] == 200, response["body"]
    view = json.loads(response["body"])
    assert view["title"] == "shared"
    assert [p["id"] for p in view["photos"]] == [ticket["uploadId"]]
    assert httpx.get(view["photos"][0]["url"]).content == data
    for forbidden in ("owner", "fileName", "camera", "location", "secret-name"):
        assert forbidden not in response["body"]

    event = connect_event("GetSharedAlbum", {"token": "no-such-token"}, None, template=template)
    event["requestContext"].pop("authorizer", None)
    response = handler(event, FakeContext())
    assert response["statusCode"] == 404
