"""gRPC-web requests over a real socket, as bytes: content types and methods, framing (lengths,
flags, limits), and the base64 text mode. Frames and base64 are built here by hand from the
spec (tests/support/grpc_web.py), independently of the gateway's codec; golden bytes live in
tests/data/grpc_web/."""

from __future__ import annotations

import base64

import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc

from .support.grpc_web import (
    ALLOWED_ORIGIN,
    BINARY_REPLY,
    BINARY_TYPES,
    DATA,
    FOUR_MIB,
    GET_ACCOUNT_FRAME,
    GET_ACCOUNT_TEXT,
    OK_TRAILER_FRAME,
    SERVICE,
    TEXT_REPLY,
    TEXT_TYPES,
    auth,
    b64_segments,
    frame,
    grpc_web_post,
    read_grpc_web,
    split_frames,
    trailers_only_status,
)
from .support.images import jpeg
from .support.users import User, upload_photo

# Content types and methods


@pytest.mark.parametrize("content_type", BINARY_TYPES + TEXT_TYPES)
async def test_grpc_web_content_types_are_accepted(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    alice: User,
    content_type: str,
) -> None:
    text = content_type in TEXT_TYPES
    response = await grpc_web_post(
        web,
        "GetAccount",
        GET_ACCOUNT_TEXT if text else GET_ACCOUNT_FRAME,
        content_type=content_type,
        headers=auth(alice),
    )
    native = await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    assert response.status_code == 200
    assert response.headers["content-type"] == (TEXT_REPLY if text else BINARY_REPLY)
    body = b64_segments(response.content) if text else response.content
    assert body == frame(native.SerializeToString()) + OK_TRAILER_FRAME


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/grpc",
        "application/grpc+proto",
        "application/grpc-web+json",
        "application/grpc-webtext",
        "application/octet-stream",
        "application/x-protobuf",
        "multipart/form-data; boundary=x",
    ],
)
async def test_other_content_types_are_415(
    web: httpx.AsyncClient, alice: User, content_type: str | None
) -> None:
    headers = auth(alice) | ({"content-type": content_type} if content_type else {})
    response = await web.post(f"/{SERVICE}/GetAccount", content=GET_ACCOUNT_FRAME, headers=headers)
    assert response.status_code == 415
    assert "grpc-status" not in response.headers


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
async def test_methods_other_than_post_are_405(
    web: httpx.AsyncClient, alice: User, method: str
) -> None:
    response = await web.request(
        method,
        f"/{SERVICE}/GetAccount",
        headers={"content-type": "application/grpc-web+proto", **auth(alice)},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"
    assert "grpc-status" not in response.headers


async def test_options_is_the_preflight_not_405(web: httpx.AsyncClient) -> None:
    response = await web.options(
        f"/{SERVICE}/GetAccount",
        headers={"origin": ALLOWED_ORIGIN, "access-control-request-method": "POST"},
    )
    assert response.status_code == 204
    assert response.content == b""


# Request framing


FRAMING_ERRORS = [
    pytest.param(b"", 3, id="no-frame"),
    pytest.param(b"\x00\x00\x00", 3, id="truncated-header"),
    pytest.param(GET_ACCOUNT_FRAME + b"\x00\x00", 3, id="trailing-partial-header"),
    pytest.param(b"\x00\x00\x00\x00\x0a" + b"\x08\x01", 3, id="frame-shorter-than-prefix"),
    pytest.param(b"\x00" + (FOUR_MIB + 1).to_bytes(4, "big"), 8, id="prefix-4mib-plus-1"),
    pytest.param(b"\x00\x7f\xff\xff\xff", 8, id="prefix-2gib"),
    pytest.param(b"\x00\xff\xff\xff\xff", 8, id="prefix-4gib"),
    pytest.param(GET_ACCOUNT_FRAME + GET_ACCOUNT_FRAME, 3, id="two-data-frames"),
    pytest.param(
        GET_ACCOUNT_FRAME + frame(b"grpc-status: 0\r\n", 0x80), 3, id="data-then-trailer-frame"
    ),
    pytest.param(frame(b"grpc-status: 0\r\n", 0x80), 3, id="trailer-frame-only"),
    pytest.param(frame(b"", 0x01), 12, id="compressed-flag"),
    pytest.param(frame(b"", 0x02), 3, id="unknown-flag"),
    pytest.param(frame(b"\xff\xff"), 3, id="not-protobuf"),
]


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
@pytest.mark.parametrize(("body", "code"), FRAMING_ERRORS)
async def test_bad_framing_is_a_grpc_status(
    web: httpx.AsyncClient, alice: User, body: bytes, code: int, text: bool
) -> None:
    response = await grpc_web_post(
        web,
        "GetAccount",
        base64.b64encode(body) if text else body,
        content_type=TEXT_REPLY if text else BINARY_REPLY,
        headers=auth(alice),
    )
    reply = trailers_only_status(response, text=text)
    assert reply.code == code
    assert reply.message
    if code == 8:
        assert str(FOUR_MIB) in reply.message  # names the limit


async def test_compressed_flag_with_unsupported_encoding_is_unimplemented(
    web: httpx.AsyncClient, alice: User
) -> None:
    response = await grpc_web_post(
        web,
        "GetAccount",
        frame(b"\x1f\x8b\x08\x00", 0x01),
        headers={"grpc-encoding": "snappy", **auth(alice)},
    )
    assert trailers_only_status(response).code == 12


async def test_uncompressed_frame_with_grpc_encoding_header_is_accepted(
    web: httpx.AsyncClient, alice: User
) -> None:
    # A client may announce an encoding and still send a message uncompressed (flag 0).
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_FRAME, headers={"grpc-encoding": "gzip", **auth(alice)}
    )
    assert read_grpc_web(response).code == 0


def query_request_frame(size: int) -> bytes:
    """A ListPhotosRequest frame whose message is exactly `size` bytes (all in `query`)."""
    # field 4 (query), wire type 2: tag 0x22, then a 4-byte varint length, then the text.
    text_length = size - 5
    varint = bytes(
        [
            0x80 | (text_length & 0x7F),
            0x80 | ((text_length >> 7) & 0x7F),
            0x80 | ((text_length >> 14) & 0x7F),
            (text_length >> 21) & 0x7F,
        ]
    )
    message = b"\x22" + varint + b"q" * text_length
    assert len(message) == size
    assert pb.ListPhotosRequest.FromString(message).query == "q" * text_length
    return frame(message)


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
async def test_message_of_exactly_4mib_passes_the_frame_limit(
    web: httpx.AsyncClient, alice: User, text: bool
) -> None:
    """At the limit the message reaches the core (which refuses the 4 MiB query itself)."""
    body = query_request_frame(FOUR_MIB)
    response = await grpc_web_post(
        web,
        "ListPhotos",
        base64.b64encode(body) if text else body,
        content_type=TEXT_REPLY if text else BINARY_REPLY,
        headers=auth(alice),
    )
    reply = trailers_only_status(response, text=text)
    assert reply.code == 3
    assert reply.message.startswith("query: ")


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
async def test_message_one_byte_over_4mib_is_resource_exhausted(
    web: httpx.AsyncClient, alice: User, text: bool
) -> None:
    body = query_request_frame(FOUR_MIB + 1)
    response = await grpc_web_post(
        web,
        "ListPhotos",
        base64.b64encode(body) if text else body,
        content_type=TEXT_REPLY if text else BINARY_REPLY,
        headers=auth(alice),
    )
    assert trailers_only_status(response, text=text).code == 8


async def test_body_over_the_transport_cap_gets_a_grpc_status_and_cors(
    web: httpx.AsyncClient, alice: User
) -> None:
    """A body over the transport's cap (MAX_BODY_BYTES, 4 MiB * 4/3 + 1 KiB) is answered in the
    caller's protocol with CORS: grpc-status 8, as for a 4 MiB + 1 prefix. (It was once a plain
    413 without CORS headers, which a browser reports as a network failure.)"""
    body = frame(b"\x22" + b"q" * (6 * 1024 * 1024))
    response = await grpc_web_post(
        web, "ListPhotos", body, headers={"origin": ALLOWED_ORIGIN, **auth(alice)}
    )
    assert response.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert trailers_only_status(response).code == 8


# Text mode


async def test_text_request_in_two_padded_segments_decodes(
    web: httpx.AsyncClient,
    stub: pb_grpc.PhotoServiceAsyncStub,
    http: httpx.AsyncClient,
    alice: User,
) -> None:
    for title in ("one", "two"):
        await upload_photo(stub, http, alice, jpeg(), title=title)
    body = (DATA / "list_photos_page_size_1.two_segments.txt").read_bytes()
    assert body == b"AAAAAAI=CAE="
    assert b64_segments(body) == frame(pb.ListPhotosRequest(page_size=1).SerializeToString())
    response = await grpc_web_post(
        web, "ListPhotos", body, content_type="application/grpc-web-text", headers=auth(alice)
    )
    native = await stub.ListPhotos(pb.ListPhotosRequest(page_size=1), metadata=alice.metadata)
    assert len(native.photos) == 1
    assert native.next_page_token
    assert response.status_code == 200
    assert response.headers["content-type"] == TEXT_REPLY
    assert b64_segments(response.content) == frame(native.SerializeToString()) + OK_TRAILER_FRAME


async def test_text_request_one_padded_segment_per_byte_decodes(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    raw = frame(pb.ListPhotosRequest(page_size=3, query="été").SerializeToString())
    body = b"".join(base64.b64encode(raw[i : i + 1]) for i in range(len(raw)))
    assert body.count(b"==") == len(raw)
    response = await grpc_web_post(
        web, "ListPhotos", body, content_type=TEXT_REPLY, headers=auth(alice)
    )
    native = await stub.ListPhotos(
        pb.ListPhotosRequest(page_size=3, query="été"), metadata=alice.metadata
    )
    assert b64_segments(response.content) == frame(native.SerializeToString()) + OK_TRAILER_FRAME


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"!!!!", id="not-base64-alphabet"),
        pytest.param(b"AAAAAAA", id="not-a-multiple-of-4"),
        pytest.param(b"AA=A", id="padding-inside-a-block"),
        pytest.param(b"=AAA", id="padding-first"),
        pytest.param(b"AAAAAAI=CAE", id="second-segment-truncated"),
        pytest.param(b"AAAAAAA=\n", id="newline"),
        pytest.param(b"AAAA-_AA", id="base64url-alphabet"),
        pytest.param(b"====", id="padding-only"),
        pytest.param("AAAAAAA\u00e9".encode(), id="non-ascii"),
    ],
)
async def test_text_request_with_invalid_base64_is_400(
    web: httpx.AsyncClient, alice: User, body: bytes
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", body, content_type=TEXT_REPLY, headers=auth(alice)
    )
    assert response.status_code == 400
    assert "grpc-status" not in response.headers


async def test_text_request_with_a_padding_only_block_is_400(
    web: httpx.AsyncClient, alice: User
) -> None:
    """A block of four '=' is base64 in no grammar, also after an unpadded segment (Python's
    lenient decoder once dropped it and the call ran): `AAAAAAQIAUgB====` is a 400."""
    raw = frame(
        pb.ListPhotosRequest(page_size=1, order=pb.PHOTO_ORDER_NEWEST_FIRST).SerializeToString()
    )
    assert len(raw) % 3 == 0
    assert base64.b64encode(raw) == b"AAAAAAQIAUgB"
    response = await grpc_web_post(
        web, "ListPhotos", b"AAAAAAQIAUgB====", content_type=TEXT_REPLY, headers=auth(alice)
    )
    assert response.status_code == 400, response.content
    assert "grpc-status" not in response.headers


async def test_text_reply_decodes_to_data_frame_then_trailer_frame(
    web: httpx.AsyncClient, stub: pb_grpc.PhotoServiceAsyncStub, alice: User
) -> None:
    response = await grpc_web_post(
        web, "GetAccount", GET_ACCOUNT_TEXT, content_type=TEXT_REPLY, headers=auth(alice)
    )
    native = await stub.GetAccount(pb.GetAccountRequest(), metadata=alice.metadata)
    assert response.headers["content-type"] == TEXT_REPLY
    assert set(response.content) <= set(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    )
    frames = split_frames(b64_segments(response.content))
    assert frames == [(0x00, native.SerializeToString()), (0x80, OK_TRAILER_FRAME[5:])]


async def test_frames_after_the_first_are_refused_at_their_header(
    web: httpx.AsyncClient, alice: User
) -> None:
    """A unary request carries one data frame: the second is refused as soon as it starts,
    never parsed, so a third frame's header (here one claiming 4 GiB) is never read."""
    body = GET_ACCOUNT_FRAME + frame(b"") + b"\x00\xff\xff\xff\xff"
    reply = trailers_only_status(await grpc_web_post(web, "GetAccount", body, headers=auth(alice)))
    assert reply.code == 3, reply.message


@pytest.mark.parametrize("token", [None, "Bearer not-a-token"], ids=["no-token", "bad-token"])
async def test_anonymous_text_body_is_refused_before_it_is_decoded(
    web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    """A grpc-web-text body of 700,000 empty frames (4.7 MB of base64) from a caller without
    a valid token is answered UNAUTHENTICATED from the headers; the base64 is never decoded
    and no frame is read."""
    from photovault_server.transport.web import grpc_web

    decoded: list[int] = []
    real_decode_text = grpc_web.decode_text

    def counting_decode_text(body: bytes) -> bytes:
        decoded.append(len(body))
        return real_decode_text(body)

    monkeypatch.setattr(grpc_web, "decode_text", counting_decode_text)
    body = base64.b64encode(frame(b"") * 700_000)
    headers = {"authorization": token} if token else {}
    response = await grpc_web_post(
        web, "GetAccount", body, content_type=TEXT_REPLY, headers=headers
    )
    assert trailers_only_status(response, text=True).code == 16
    assert decoded == []
