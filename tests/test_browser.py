"""The web client (client/web) in a real browser: headless Chromium (Debian's `chromium`, driven
by playwright-core from npm) opens the gallery page from one origin, calls the gateway on a
second origin over gRPC-web and PUTs to moto's S3 on a third, so both CORS policies are real.
It uploads a real PNG and a real JPEG and checks that the gallery decoded both images; then
Google's grpc-web client (text mode) calls GetAccount from the same page. A gallery of
processed photos shows ThumbHash placeholders and thumbs, opens previews, and downloads a
fraction of the originals' bytes.

Needs `npm ci` (root package.json) and Chromium (`apt-get install chromium`, or the binary in
PHOTOVAULT_CHROMIUM)."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
from google.protobuf import timestamp_pb2

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_dev.s3 import moto_s3
from photovault_server.app import App, open_app
from photovault_server.server import running_grpc_server, web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .node.harness import REPO_ROOT, build_web_client, require_packages, run_node
from .support.images import decoded_size, jpeg, photo_like, png
from .support.multipart import PART, MiB, large_jpeg
from .support.processing import process_due_photos
from .support.settings import REGION, make_settings
from .support.users import new_user, upload_photo

BROWSER_BUCKET = "photovault-browser-test"
UPLOAD_SCRIPT = REPO_ROOT / "tests" / "browser" / "upload.mjs"
CACHE_SCRIPT = REPO_ROOT / "tests" / "browser" / "cache.mjs"
RESUME_SCRIPT = REPO_ROOT / "tests" / "browser" / "resume.mjs"
VARIANTS_SCRIPT = REPO_ROOT / "tests" / "browser" / "variants.mjs"
SHARE_SCRIPT = REPO_ROOT / "tests" / "browser" / "share.mjs"


def chromium_path() -> str:
    found = os.environ.get("PHOTOVAULT_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "Chromium is needed for the browser test: `apt-get install -y chromium` (Debian),"
            " or point PHOTOVAULT_CHROMIUM at a Chromium binary"
        )
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """client/web/dist, freshly built, served by a plain static server on its own port."""
    dist = build_web_client()
    handler = functools.partial(_QuietHandler, directory=str(dist))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Stack:
    page_origin: str
    api_url: str
    s3_endpoint: str
    stub: pb_grpc.PhotoServiceAsyncStub
    app: App


@pytest.fixture(scope="module")
async def stack(
    page_origin: str, database_url: str, redis_url: str, aws_env: None
) -> AsyncIterator[Stack]:
    """moto's S3 with a bucket whose CORS rule allows the page's origin, and the service (web
    gateway + native gRPC) with that origin on its CORS allow-list."""
    with moto_s3("127.0.0.1", 0, BROWSER_BUCKET, REGION, [page_origin]) as s3_endpoint:
        # botocore reads the endpoint when the app creates its client; restore the session's.
        previous = os.environ["AWS_ENDPOINT_URL_S3"]
        os.environ["AWS_ENDPOINT_URL_S3"] = s3_endpoint
        try:
            settings = make_settings(
                database_url,
                redis_url,
                PHOTOVAULT_BUCKET=BROWSER_BUCKET,
                PHOTOVAULT_CORS_ORIGINS=page_origin,
                # Room for the multipart test's file (parts keep S3's 5 MiB minimum).
                PHOTOVAULT_QUOTA_BYTES=64 * MiB,
            )
            async with open_app(settings) as app:
                os.environ["AWS_ENDPOINT_URL_S3"] = previous
                async with (
                    running_web_gateway(web_gateway(app), "127.0.0.1:0") as http_port,
                    running_grpc_server(app, "127.0.0.1:0") as running,
                    grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
                ):
                    yield Stack(
                        page_origin=page_origin,
                        api_url=f"http://127.0.0.1:{http_port}",
                        s3_endpoint=s3_endpoint,
                        stub=pb_grpc.PhotoServiceStub(channel),
                        app=app,
                    )
        finally:
            os.environ["AWS_ENDPOINT_URL_S3"] = previous


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def test_gallery_uploads_png_and_jpeg_and_renders_them(
    stack: Stack, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    require_packages("playwright-core")
    chromium = chromium_path()
    user = new_user()
    files = {
        "sunset-beach.png": ("image/png", png((12, 9))),
        "mountain-lake.jpg": ("image/jpeg", jpeg((16, 10))),
    }
    paths = []
    for name, (_, data) in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    # Three origins: the page, the gateway and S3 differ (by port), so every call is cross-origin.
    assert len({stack.page_origin, stack.api_url, stack.s3_endpoint}) == 3

    started = time.monotonic()
    result = await run_node(
        UPLOAD_SCRIPT,
        {
            "PAGE_URL": stack.page_origin,
            "API_URL": stack.api_url,
            "TOKEN": user.token,
            "FILES": json.dumps(paths),
            "TAGS": "browser, e2e",
            "SEARCH": "mountain",
            "CHROMIUM": chromium,
            "SCREENSHOT": os.environ.get("PHOTOVAULT_BROWSER_SCREENSHOT", ""),
        },
        time_limit=120,
    )
    elapsed = time.monotonic() - started
    print(f"browser run: {elapsed:.1f} s (Chromium launch {result.get('launchMs')} ms)")
    assert result["ok"], result
    assert result["fields"] == {"api": stack.api_url, "tokenSet": True}

    # Both images rendered: decoded by the browser at their real size, from S3's origin.
    rendered = {photo["title"]: photo for photo in result["gallery"]}
    assert set(rendered) == {"sunset-beach", "mountain-lake"}, result["gallery"]
    for name, (_, data) in files.items():
        photo = rendered[name.rsplit(".", 1)[0]]
        assert photo["naturalWidth"] > 0, photo
        assert (photo["naturalWidth"], photo["naturalHeight"]) == decoded_size(data)
        assert _origin(photo["src"]) == stack.s3_endpoint
        assert photo["tags"] == "#browser #e2e"
    assert result["searchTitles"] == ["mountain-lake"]
    assert result["tagCount"] == 2
    assert result["missingTagCount"] == 0

    # CORS was real and allowed: each cross-origin answer named the page's origin.
    calls: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for response in result["responses"]:
        calls.setdefault((response["method"], response["origin"]), []).append(response)
    grpc_web = calls[("POST", stack.api_url)]
    # connect-web (binary): 5 gallery listings + 2 x (CreateUploadUrl, ConfirmUpload); then
    # Google's grpc-web client (text): GetAccount.
    assert len(grpc_web) == 10, grpc_web
    assert [r["contentType"] for r in grpc_web] == ["application/grpc-web+proto"] * 9 + [
        "application/grpc-web-text+proto"
    ]
    for response in grpc_web:
        assert response["status"] == 200
        assert response["grpcStatus"] in (None, "0")  # status in the trailer frame when OK
        assert response["allowOrigin"] == stack.page_origin
    assert result["grpcWebText"] == {"userId": user.id, "photoCount": 2}
    puts = calls[("PUT", stack.s3_endpoint)]
    assert [put["status"] for put in puts] == [200, 200]
    assert all(put["allowOrigin"] == stack.page_origin for put in puts)
    assert not result["pageErrors"], result["pageErrors"]
    assert not [line for line in result["console"] if line.startswith("error")], result["console"]
    assert not result["failedRequests"], result["failedRequests"]

    # The service holds both photos, with the browser's SHA-256 and exactly the bytes sent.
    listed = await stack.stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)
    by_name = {photo.file_name: photo for photo in listed.photos}
    assert set(by_name) == set(files)
    for name, (content_type, data) in files.items():
        photo = by_name[name]
        assert photo.content_type == content_type
        assert photo.size_bytes == len(data)
        assert photo.checksum_sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert sorted(photo.tags) == ["browser", "e2e"]
        assert photo.id in {p["id"] for p in result["gallery"]}
        download = await http.get(photo.url)
        assert download.status_code == 200
        assert download.content == data
    account = await stack.stub.GetAccount(pb.GetAccountRequest(), metadata=user.metadata)
    assert account.account.photo_count == 2


async def test_a_second_visit_loads_every_image_from_the_browser_cache(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """The same URL within a signing window, and `response-cache-control: private,
    max-age=<lifetime>, immutable` signed into it: a browser coming back to the gallery shows
    every image without a request to S3 (not even a revalidation)."""
    require_packages("playwright-core")
    user = new_user()
    for shade in range(3):
        await upload_photo(stack.stub, http, user, jpeg((8, 6), rgb=(shade * 80, 40, 40)))
    result = await run_node(
        CACHE_SCRIPT,
        {
            "PAGE_URL": stack.page_origin,
            "API_URL": stack.api_url,
            "TOKEN": user.token,
            "CHROMIUM": chromium_path(),
        },
        time_limit=120,
    )
    assert result["ok"], result
    first, second = result["first"], result["second"]
    assert len(first["srcs"]) == 3
    assert second["srcs"] == first["srcs"]  # the service handed out the same URLs
    assert [(i["fromCache"], i["status"]) for i in first["images"]] == [(False, 200)] * 3
    assert len(second["images"]) == 3
    assert all(image["fromCache"] for image in second["images"]), second["images"]


async def test_a_large_upload_resumes_after_a_reload_without_sending_stored_parts_again(
    stack: Stack, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    """The page sends a file above its multipart threshold in parts; the page is reloaded once
    S3 stored one part (the others held back), the same file is picked again: only the parts S3
    does not hold are sent, and the confirmed photo has exactly the file's bytes."""
    require_packages("playwright-core")
    user = new_user()
    data = large_jpeg(2 * PART + MiB)  # parts of 5 MiB, 5 MiB and 1 MiB
    source = tmp_path / "harbour-panorama.jpg"
    source.write_bytes(data)
    result = await run_node(
        RESUME_SCRIPT,
        {
            "PAGE_URL": stack.page_origin,
            "API_URL": stack.api_url,
            "S3_URL": stack.s3_endpoint,
            "TOKEN": user.token,
            "FILE": str(source),
            "MULTIPART_THRESHOLD": str(MiB),
            "CHROMIUM": chromium_path(),
        },
        time_limit=180,
    )
    assert result["ok"], result
    assert not result["pageErrors"], result["pageErrors"]

    # Before the reload the page kept what resuming needs; after the confirm, nothing.
    [saved] = result["savedBeforeReload"]
    assert saved["fileName"] == source.name
    assert saved["size"] == len(data)
    assert saved["partSize"] == PART
    assert result["savedAfterReload"] == [saved]
    assert result["savedAfterConfirm"] == []

    # The first load stored exactly one part; the second sent each other part once, not that one.
    first = result["firstStored"]
    stored_first = [p for p in result["puts"] if p["load"] == 1 and p["status"] == 200]
    assert [p["partNumber"] for p in stored_first] == [first]
    second = sorted((p["partNumber"], p["status"]) for p in result["puts"] if p["load"] == 2)
    assert second == [(n, 200) for n in (1, 2, 3) if n != first], result["puts"]

    listed = await stack.stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)
    [photo] = listed.photos
    assert photo.file_name == source.name
    assert photo.size_bytes == len(data)
    download = await http.get(photo.url)
    assert download.status_code == 200
    assert download.content == data


async def test_a_gallery_page_shows_placeholders_and_thumbs_not_originals(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """20 processed photos: each tile has its ThumbHash placeholder behind the `thumb` variant,
    links to the `preview` (a click opens it), and the page downloads at most a tenth of the
    originals' bytes."""
    require_packages("playwright-core")
    user = new_user()
    originals = [photo_like((1200, 900), seed) for seed in range(20)]
    for data in originals:
        await upload_photo(stack.stub, http, user, data)
    await process_due_photos(stack.app)
    listed = await stack.stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)
    variants = {p.id: {v.name: v for v in p.variants} for p in listed.photos}
    assert len(variants) == 20
    assert all(set(v) == {"thumb", "preview"} for v in variants.values()), variants

    result = await run_node(
        VARIANTS_SCRIPT,
        {
            "PAGE_URL": stack.page_origin,
            "API_URL": stack.api_url,
            "TOKEN": user.token,
            "CHROMIUM": chromium_path(),
        },
        time_limit=120,
    )
    assert result["ok"], result
    assert len(result["tiles"]) == 20
    for tile in result["tiles"]:
        thumb, preview = variants[tile["id"]]["thumb"], variants[tile["id"]]["preview"]
        assert tile["src"] == thumb.url
        assert (tile["naturalWidth"], tile["naturalHeight"]) == (thumb.width, thumb.height)
        assert tile["background"].startswith('url("data:image/png;base64,'), tile
        assert tile["href"] == preview.url
    first = result["tiles"][0]
    assert result["opened"] == first["href"]
    loaded = sum(image["bytes"] for image in result["images"])
    total = sum(len(data) for data in originals)
    print(f"gallery images: {loaded} bytes, originals {total} ({loaded / total:.1%})")
    assert 0 < loaded <= total / 10, result["images"]


async def test_share_button_and_share_page_without_a_token(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """The owner shares a photo from its tile; a visitor without any token opens the link and
    sees its thumb; a password link asks for the password first. No call of the share pages
    carries an authorization header."""
    require_packages("playwright-core")
    user = new_user()
    photo = await upload_photo(stack.stub, http, user, photo_like((256, 192)), title="shared one")
    await process_due_photos(stack.app)
    album = (
        await stack.stub.CreateAlbum(pb.CreateAlbumRequest(title="Locked"), metadata=user.metadata)
    ).album
    await stack.stub.AddAlbumPhotos(
        pb.AddAlbumPhotosRequest(album_id=album.id, photo_ids=[photo.id]), metadata=user.metadata
    )
    expire = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
    locked = await stack.stub.CreateShareLink(
        pb.CreateShareLinkRequest(album_id=album.id, expire_time=expire, password="open sesame"),
        metadata=user.metadata,
    )
    listed = await stack.stub.ListPhotos(pb.ListPhotosRequest(), metadata=user.metadata)
    thumb = {v.name: v for v in listed.photos[0].variants}["thumb"]

    result = await run_node(
        SHARE_SCRIPT,
        {
            "PAGE_URL": stack.page_origin,
            "API_URL": stack.api_url,
            "TOKEN": user.token,
            "CHROMIUM": chromium_path(),
            "PASSWORD_TOKEN": locked.share_link.token,
            "PASSWORD": "open sesame",
        },
        time_limit=120,
    )
    assert result["ok"], result
    assert "share=" in result["shareUrl"]
    assert user.token not in result["shareUrl"]
    (tile,) = result["tiles"]
    assert tile["id"] == photo.id
    assert tile["naturalWidth"] == thumb.width
    assert "shared one" in tile["text"]
    assert result["hidden"] == {"owner": True, "token": ""}
    assert "password" in result["asked"]
    assert [t["id"] for t in result["lockedTiles"]] == [photo.id]
    assert result["title"] == "Locked"
    assert result["calls"]
    assert all(
        call == {"path": "/photovault.v1.PhotoService/GetSharedAlbum", "auth": False}
        for call in result["calls"]
    ), result["calls"]
