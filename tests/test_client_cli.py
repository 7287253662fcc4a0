"""The client commands as a shell user runs them: `python -m photovault_client.cli` in a real
subprocess against the real server (native gRPC and Connect), checking stdout, stderr and exit
codes (0 done, 1 refused, 2 usage). Subprocesses are awaited without blocking the event loop
that serves them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from photovault.v1 import photo_service_pb2 as pb
from photovault.v1 import photo_service_pb2_grpc as pb_grpc
from photovault_client.cli import main
from photovault_server.app import App
from photovault_server.server import RunningServer
from photovault_server.transport.web import web_gateway
from photovault_server.transport.web.asgi import running_web_gateway

from .support.images import camera_exif, decoded_size, encode, halves, jpeg, png
from .support.loopback import closed_port
from .support.processing import process_due_photos
from .support.users import User


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def photovault(
    *args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None
) -> Result:
    """Runs `photovault <args>` (the client commands) with only the given PHOTOVAULT_* vars,
    and `stdin` piped in when given."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOVAULT_")}
    full_env.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "photovault_client.cli",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=full_env,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=120)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture(scope="session")
async def gateway_target(app: App) -> AsyncIterator[str]:
    async with running_web_gateway(web_gateway(app), "127.0.0.1:0") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(params=["grpc", "web"])
def target(request: pytest.FixtureRequest, grpc_server: RunningServer, gateway_target: str) -> str:
    return f"127.0.0.1:{grpc_server.port}" if request.param == "grpc" else gateway_target


@pytest.fixture
def env(target: str, alice: User) -> dict[str, str]:
    return {"PHOTOVAULT_TARGET": target, "PHOTOVAULT_TOKEN": alice.token}


async def test_upload_ls_get_rm_account(
    env: dict[str, str], tmp_path: Path, http: httpx.AsyncClient
) -> None:
    (tmp_path / "cat.jpg").write_bytes(jpeg())
    (tmp_path / "dog.png").write_bytes(png())
    files = [str(tmp_path / "cat.jpg"), str(tmp_path / "dog.png")]

    up = await photovault(
        "upload", *files, "--tag", "pets", "--tag", "Cute", "--public", "--title", "Family",
        env=env,
    )  # fmt: skip
    assert (up.code, up.err) == (0, "")
    lines = up.out.splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == files
    cat_id, dog_id = (line.split()[0] for line in lines)

    table = await photovault("ls", env=env)
    assert table.code == 0, table.err
    for expected in (cat_id, dog_id, "cat.jpg", "dog.png", "Family", "pets, cute", "public"):
        assert expected in table.out

    listed = await photovault("ls", "--json", env=env)
    records = json.loads(listed.out)
    assert {r["id"] for r in records} == {cat_id, dog_id}
    assert all(r["tags"] == ["pets", "cute"] and r["visibility"] == "public" for r in records)
    assert [
        r["id"]
        for r in json.loads((await photovault("ls", "--json", "--query", "cat", env=env)).out)
    ] == [cat_id]
    assert json.loads((await photovault("ls", "--json", "--tag", "birds", env=env)).out) == []
    limited = json.loads((await photovault("ls", "--json", "--limit", "1", env=env)).out)
    assert [r["id"] for r in limited] == [records[0]["id"]]  # the newest only

    shown = await photovault("get", cat_id, env=env)
    assert shown.code == 0
    assert cat_id in shown.out
    assert "Family" in shown.out
    assert "image/jpeg" in shown.out
    record = json.loads((await photovault("get", cat_id, "--json", env=env)).out)
    assert (record["id"], record["file_name"]) == (cat_id, "cat.jpg")
    url = await photovault("get", cat_id, "--url", env=env)
    assert url.code == 0
    assert (await http.get(url.out.strip())).content == jpeg()

    account = json.loads((await photovault("account", "--json", env=env)).out)
    assert (account["photo_count"], account["used_bytes"]) == (2, len(jpeg()) + len(png()))
    human = await photovault("account", env=env)
    assert human.code == 0
    assert "10.0 MiB" in human.out  # the quota

    removed = await photovault("rm", cat_id, env=env)
    assert (removed.code, removed.out.strip()) == (0, f"deleted {cat_id}")
    gone = await photovault("get", cat_id, env=env)
    assert gone.code == 1
    assert gone.out == ""
    assert gone.err.strip() == f"photovault: PHOTO_NOT_FOUND: photo {cat_id} not found"


async def test_trash_and_restore(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "cat.jpg").write_bytes(jpeg())
    up = await photovault("upload", str(tmp_path / "cat.jpg"), env=env)
    assert up.code == 0, up.err
    cat_id = up.out.split()[0]

    trashed = await photovault("trash", cat_id, env=env)
    assert (trashed.code, trashed.out.strip(), trashed.err) == (0, f"trashed {cat_id}", "")
    assert json.loads((await photovault("ls", "--json", env=env)).out) == []
    hidden = await photovault("get", cat_id, env=env)
    assert hidden.code == 1
    assert "PHOTO_NOT_FOUND" in hidden.err

    restored = await photovault("restore", cat_id, env=env)
    assert (restored.code, restored.out.strip(), restored.err) == (0, f"restored {cat_id}", "")
    assert [r["id"] for r in json.loads((await photovault("ls", "--json", env=env)).out)] == [
        cat_id
    ]

    unknown = "00000000-0000-4000-8000-000000000000"
    refused = await photovault("restore", unknown, env=env)
    assert refused.code == 1
    assert (
        refused.err.strip() == f"photovault: PHOTO_NOT_FOUND: {unknown}: photo {unknown} not found"
    )


async def test_album_create_ls_add_rm_and_share(
    env: dict[str, str], tmp_path: Path, stub: pb_grpc.PhotoServiceAsyncStub
) -> None:
    (tmp_path / "cat.jpg").write_bytes(jpeg())
    (tmp_path / "dog.jpg").write_bytes(jpeg(rgb=(1, 2, 3)))
    up = await photovault("upload", str(tmp_path / "cat.jpg"), str(tmp_path / "dog.jpg"), env=env)
    assert up.code == 0, up.err
    ids = [line.split()[0] for line in up.out.splitlines()]

    made = await photovault("album", "create", "Pets", "--description", "ours", env=env)
    assert made.code == 0, made.err
    album_id = made.out.strip()
    added = await photovault("album", "add", album_id, *ids, env=env)
    assert (added.code, added.out.strip()) == (0, f"{album_id}: 2 photos")
    listed = json.loads((await photovault("album", "ls", "--json", env=env)).out)
    assert [(a["id"], a["title"], a["photo_count"]) for a in listed] == [(album_id, "Pets", 2)]
    lines = (await photovault("album", "ls", env=env)).out
    assert album_id in lines
    assert "Pets" in lines
    removed = await photovault("album", "rm", album_id, ids[0], env=env)
    assert (removed.code, removed.out.strip()) == (0, f"{album_id}: 1 photos")

    shared = await photovault("share", album_id, "--expires", "2d", env=env)
    assert shared.code == 0, shared.err
    token = shared.out.strip()
    view = await stub.GetSharedAlbum(pb.GetSharedAlbumRequest(token=token))
    assert (view.title, [p.id for p in view.photos]) == ("Pets", [ids[1]])

    locked = await photovault(
        "share", album_id, "--password", "--json", env=env, stdin=b"open sesame\n"
    )
    assert locked.code == 0, locked.err
    record = json.loads(locked.out)
    assert record["has_password"] is True
    assert record["album_id"] == album_id
    view = await stub.GetSharedAlbum(
        pb.GetSharedAlbumRequest(token=record["token"], password="open sesame")
    )
    assert [p.id for p in view.photos] == [ids[1]]

    too_long = await photovault("share", album_id, "--expires", "400d", env=env)
    assert too_long.code == 1
    assert "expire_time" in too_long.err
    bad = await photovault("share", album_id, "--expires", "soon", env=env)
    assert bad.code == 2
    empty = await photovault("share", album_id, "--password", env=env, stdin=b"\n")
    assert empty.code == 2

    deleted = await photovault("album", "rm", album_id, env=env)
    assert (deleted.code, deleted.out.strip()) == (0, f"deleted album {album_id}")
    assert json.loads((await photovault("album", "ls", "--json", env=env)).out) == []
    assert len(json.loads((await photovault("ls", "--json", env=env)).out)) == 2
    unknown = await photovault("album", "add", album_id, ids[0], env=env)
    assert unknown.code == 1
    assert "ALBUM_NOT_FOUND" in unknown.err


async def test_upload_skip_duplicates(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "cat.jpg").write_bytes(jpeg())
    (tmp_path / "copy.jpg").write_bytes(jpeg())
    first = await photovault("upload", str(tmp_path / "cat.jpg"), env=env)
    assert first.code == 0, first.err
    cat_id = first.out.split()[0]
    again = await photovault("upload", "--skip-duplicates", str(tmp_path / "copy.jpg"), env=env)
    assert (again.code, again.out.strip()) == (0, f"{cat_id}  {tmp_path / 'copy.jpg'}")
    # The default: the checksum is computed anyway.
    default = await photovault("upload", str(tmp_path / "copy.jpg"), env=env)
    assert (default.code, default.out.strip()) == (0, f"{cat_id}  {tmp_path / 'copy.jpg'}")
    assert len(json.loads((await photovault("ls", "--json", env=env)).out)) == 1
    forced = await photovault("upload", "--no-skip-duplicates", str(tmp_path / "copy.jpg"), env=env)
    assert forced.code == 0, forced.err
    assert forced.out.split()[0] != cat_id
    assert len(json.loads((await photovault("ls", "--json", env=env)).out)) == 2


async def test_processing_state_dimensions_taken_time_and_variant_urls(
    env: dict[str, str], tmp_path: Path, app: App, http: httpx.AsyncClient
) -> None:
    exif = camera_exif(taken="2022:12:24 20:00:00", make="Nikon", model="Z6")
    photo = encode(halves((480, 360), (9, 9, 9), (250, 250, 250)), "JPEG", exif=exif)
    (tmp_path / "eve.jpg").write_bytes(photo)
    up = await photovault("upload", str(tmp_path / "eve.jpg"), env=env)
    assert up.code == 0, up.err
    eve_id = up.out.split()[0]
    pending = json.loads((await photovault("get", eve_id, "--json", env=env)).out)
    assert (pending["processing_state"], pending["width"]) == ("pending", 0)
    assert pending["variants"] == []
    fallback = await photovault("get", eve_id, "--variant", "thumb", "--url", env=env)
    assert fallback.code == 0
    assert fallback.out.strip() == pending["url"]  # the original's, while the thumb is made
    assert "thumb is not ready" in fallback.err

    await process_due_photos(app)
    table = await photovault("ls", env=env)
    assert table.code == 0, table.err
    row = next(line for line in table.out.splitlines() if eve_id in line)
    for expected in ("480x360", "ready", "2022-12-2"):  # the taken day, in local time
        assert expected in row
    record = json.loads((await photovault("get", eve_id, "--json", env=env)).out)
    assert record["processing_state"] == "ready"
    assert (record["width"], record["height"]) == (480, 360)
    assert record["taken_time"] == "2022-12-24T20:00:00+00:00"
    assert record["camera"] == "Nikon Z6"
    assert record["location"] is None
    assert {v["name"] for v in record["variants"]} == {"thumb", "preview"}
    shown = await photovault("get", eve_id, env=env)
    assert "Nikon Z6" in shown.out
    assert "variant thumb" in shown.out

    thumb = await photovault("get", eve_id, "--variant", "thumb", "--url", env=env)
    assert (thumb.code, thumb.err) == (0, "")
    fetched = await http.get(thumb.out.strip())
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/webp"
    assert decoded_size(fetched.content) == (320, 240)
    unknown = await photovault("get", eve_id, "--variant", "poster", "--url", env=env)
    assert unknown.code == 1
    assert "poster" in unknown.err


async def test_upload_shows_progress_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg() + bytes(300_000))
    result = await photovault("upload", str(path), env={**env, "TTY_COMPATIBLE": "1"})
    assert result.code == 0, result.err
    assert "big.jpg" in result.err
    assert "━" in result.err  # the bar
    assert "KiB" in result.err


async def test_flags_override_the_environment(target: str, alice: User, bob: User) -> None:
    result = await photovault(
        "account", "--json", "--target", target, "--token", alice.token,
        env={"PHOTOVAULT_TARGET": f"127.0.0.1:{closed_port()}", "PHOTOVAULT_TOKEN": bob.token},
    )  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out)["user_id"] == alice.id


async def test_refusals_exit_1_with_the_reason(
    env: dict[str, str], target: str, tmp_path: Path
) -> None:
    bad_token = await photovault("account", env={**env, "PHOTOVAULT_TOKEN": "not-a-jwt"})
    assert bad_token.code == 1
    assert bad_token.err.startswith("photovault: TOKEN_INVALID: ")
    assert "Traceback" not in bad_token.err

    bad_id = await photovault("get", "not-a-uuid", env=env)
    assert bad_id.code == 1
    assert bad_id.err.startswith("photovault: INVALID_ARGUMENT: id")

    unreachable = await photovault(
        "account", env={**env, "PHOTOVAULT_TARGET": f"127.0.0.1:{closed_port()}"}
    )
    assert unreachable.code == 1
    assert unreachable.err.startswith("photovault: UNAVAILABLE: ")

    missing_rm = await photovault("rm", "00000000-0000-4000-8000-000000000000", env=env)
    assert missing_rm.code == 1
    assert "PHOTO_NOT_FOUND" in missing_rm.err


async def test_upload_reports_each_bad_file_and_uploads_the_rest(
    env: dict[str, str], tmp_path: Path
) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(png())
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    liar = tmp_path / "liar.jpg"  # a JPEG name on bytes that are not: the server refuses it
    liar.write_bytes(b"definitely not a jpeg" * 3)
    missing = tmp_path / "missing.jpg"

    result = await photovault("upload", str(good), str(text), str(liar), str(missing), env=env)
    assert result.code == 1
    assert result.out.splitlines()[0].endswith(f"  {good}")
    assert len(result.out.splitlines()) == 1
    errors = result.err.splitlines()
    assert errors[0].startswith(f"photovault: UNSUPPORTED_FILE: {text}: cannot tell the image type")
    assert errors[1].startswith(f"photovault: UPLOAD_MISMATCH: {liar}: upload ")
    assert errors[2].startswith(f"photovault: FILE_UNREADABLE: {missing}: No such file")
    account = json.loads((await photovault("account", "--json", env=env)).out)
    assert account["photo_count"] == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="no-command"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param(["upload"], id="upload-without-files"),
        pytest.param(["ls", "--bogus"], id="unknown-flag"),
        pytest.param(["ls", "--limit", "0"], id="bad-limit"),
        pytest.param(["get"], id="get-without-id"),
    ],
)
async def test_usage_errors_exit_2(env: dict[str, str], args: list[str]) -> None:
    result = await photovault(*args, env=env)
    assert result.code == 2
    assert "usage: photovault" in result.err
    assert result.out == ""


async def test_a_missing_token_is_a_usage_error(target: str) -> None:
    result = await photovault("account", env={"PHOTOVAULT_TARGET": target})
    assert result.code == 2
    assert result.err.strip() == "photovault: usage: no token: pass --token or set PHOTOVAULT_TOKEN"


async def test_main_runs_in_process(
    grpc_server: RunningServer, alice: User, capsys: pytest.CaptureFixture[str]
) -> None:
    """main(argv) returns the exit code instead of exiting (run in a thread: it owns a loop)."""
    argv = [
        "account",
        "--json",
        "--target",
        f"127.0.0.1:{grpc_server.port}",
        "--token",
        alice.token,
    ]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out  # the in-process server logs to stdout too
    assert json.loads(out[out.index("{\n") : out.rindex("\n}") + 2])["user_id"] == alice.id
    assert await asyncio.to_thread(main, ["ls", "--nope"]) == 2
    assert await asyncio.to_thread(main, ["--help"]) == 0
