"""Slow clients cannot hold the gateway's connections or tasks: a connection that sends nothing,
or trickles its header block, is closed at the header deadline (also after a keep-alive wait);
a body that stalls is answered with a clean status in the caller's protocol, and the
connection closed; meanwhile everyone else is served. (Deadlines shortened here; the served
defaults are 10 s for headers and for the body, 30 s keep-alive.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from photovault_server.app import App
from photovault_server.transport.web import WebGateway
from photovault_server.transport.web.asgi import running_web_gateway
from photovault_server.transport.web.cors import CorsPolicy

from .support.users import new_user

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
KEEP_ALIVE = 1
PATH = "/photovault.v1.PhotoService/GetAccount"


@pytest.fixture(scope="module")
async def port(app: App) -> AsyncIterator[int]:
    gateway = WebGateway(app.service, app.verifier, cors=CorsPolicy([]))
    async with running_web_gateway(
        gateway,
        "127.0.0.1:0",
        header_timeout=HEADER_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
        keep_alive_seconds=KEEP_ALIVE,
    ) as bound:
        yield bound


def _request(content_type: str, body: bytes, *, length: int | None = None) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\n"
        f"authorization: Bearer {new_user().token}\r\n"
        f"content-length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


GRPC_WEB_BODY = b"\x00\x00\x00\x00\x00"  # one empty GetAccountRequest frame


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (reading and dropping what it sends)."""
    started = time.monotonic()
    async with asyncio.timeout(limit):
        while await reader.read(65536):
            pass
    return time.monotonic() - started


async def test_a_silent_connection_is_closed_at_the_header_deadline(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        waited = await _closed_after(reader, 5)
    finally:
        writer.close()
    assert waited >= HEADER_TIMEOUT * 0.8  # and not never: _closed_after gives up at 5 s


async def test_trickled_headers_are_cut_off(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = _request("application/grpc-web+proto", GRPC_WEB_BODY)

    async def trickle() -> None:
        for byte in request:  # ~20 s at this pace, were it let through
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)

    sending = asyncio.create_task(trickle())
    try:
        waited = await _closed_after(reader, 5)
    finally:
        sending.cancel()
        writer.close()
    assert waited < 5  # the trickle alone would take 20 s


async def test_after_an_answer_the_next_request_has_keep_alive_plus_the_header_deadline(
    port: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request("application/grpc-web+proto", GRPC_WEB_BODY))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\n")  # and then nothing
        waited = await _closed_after(reader, 10)
    finally:
        writer.close()
    del started
    assert waited >= KEEP_ALIVE + HEADER_TIMEOUT - 0.3  # and not never: the limit is 10 s


@pytest.mark.parametrize(
    ("content_type", "status_line", "marker"),
    [
        ("application/grpc-web+proto", b"HTTP/1.1 200", b"grpc-status: 4"),
        ("application/proto", b"HTTP/1.1 504", b'"code":"deadline_exceeded"'),
        ("text/plain", b"HTTP/1.1 408", b"not received in time"),
    ],
)
async def test_a_stalled_body_gets_a_clean_status_and_the_connection_closes(
    port: int, content_type: str, status_line: bytes, marker: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request(content_type, b"\x00\x00", length=100))  # 98 bytes never come
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(-1), 5)  # read to the close
        waited = time.monotonic() - started
    finally:
        writer.close()
    assert answer.startswith(status_line), answer[:200]
    assert marker in answer.lower() or marker in answer, answer[:400]
    assert b"connection: close" in answer.lower()
    assert waited >= BODY_TIMEOUT * 0.8  # answered at the deadline, not before (limit: 5 s)


async def test_hundreds_of_slow_clients_do_not_stop_the_others(port: int) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(200)]
    try:
        for _, writer in idle[:100]:
            writer.write(b"POST / HTTP/1.1\r\n")  # half a header block
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request("application/grpc-web+proto", GRPC_WEB_BODY))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.gather(*(_closed_after(r, 5) for r, _ in idle))  # all, within 5 s
    finally:
        for _, w in idle:
            w.close()
