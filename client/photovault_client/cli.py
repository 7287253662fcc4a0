"""The client for people: `photovault upload|ls|get|rm|account`.

    photovault upload cat.jpg dog.png --tag pets --public
    photovault ls --tag pets            # a table; --json for scripts
    photovault get ID --url             # just the download URL
    photovault get ID --variant thumb --url   # the thumbnail's URL
    photovault rm ID
    photovault album create "Summer 2026"   # prints the album's id
    photovault album add ALBUM ID...     # rm ALBUM ID... takes them out; rm ALBUM deletes it
    photovault album ls
    photovault share ALBUM --expires 7d [--password]   # prints the link's token
    photovault account

The target and token come from --target / --token or PHOTOVAULT_TARGET / PHOTOVAULT_TOKEN.
A target is `host:port` (gRPC, plaintext), `grpcs://host:port` (gRPC over TLS) or an
http(s):// URL (Connect: the web gateway or the Lambda Function URL).
Exit codes: 0 done, 1 the service (or a local file) refused, 2 usage; errors go to stderr as
`photovault: <reason>: <message>`.

`add_client_commands` adds these commands to an argparse parser (the `photovault` command);
`main` runs them alone (`python -m photovault_client.cli`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from . import _render as render
from ._client import PhotoVaultClient
from ._errors import PhotoVaultError
from ._models import Album, Photo, Visibility
from ._multipart import DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PARTS_IN_FLIGHT, STATE_SUFFIX

ENV_TARGET = "PHOTOVAULT_TARGET"
ENV_TOKEN = "PHOTOVAULT_TOKEN"  # noqa: S105 - the variable's name, not a token
DEFAULT_TARGET = "127.0.0.1:50051"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
UPLOAD_CONCURRENCY = 4
PIPED_WIDTH = 1000

Command = Callable[[PhotoVaultClient, argparse.Namespace, "Terminal"], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Terminal:
    """Where output goes: results to stdout, progress and errors to stderr."""

    out: Console
    err: Console

    @classmethod
    def standard(cls) -> Terminal:
        out = Console(highlight=False)
        if not out.is_terminal and "COLUMNS" not in os.environ:
            # Piped (grep, less, a file): whole rows, never wrapped at rich's default 80.
            out = Console(highlight=False, width=PIPED_WIDTH)
        return cls(out, Console(stderr=True, highlight=False))

    def line(self, text: str) -> None:
        """Plain text to stdout, never wrapped or styled (ids, URLs, JSON)."""
        print(text, file=sys.stdout, flush=True)

    def error(self, reason: str, message: str) -> None:
        print(f"photovault: {reason}: {message}", file=sys.stderr, flush=True)


# Commands ----------------------------------------------------------------------------------


async def _upload(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    paths = [Path(p) for p in args.files]
    visibility = Visibility.PUBLIC if args.public else Visibility.PRIVATE
    limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=term.err,
        disable=not term.err.is_interactive,
    )

    async def one(path: Path) -> Photo | PhotoVaultError | OSError | ValueError:
        task: TaskID = progress.add_task(path.name, total=None)

        def report(sent: int, total: int) -> None:
            progress.update(task, completed=sent, total=total)

        async with limit:
            try:
                return await pv.upload(
                    path,
                    title=args.title or "",
                    description=args.description or "",
                    tags=args.tag,
                    visibility=visibility,
                    progress=report,
                    multipart_threshold=args.multipart_threshold,
                    parts_in_flight=args.parts_in_flight,
                    resume=args.resume,
                    skip_if_duplicate=args.skip_duplicates,
                )
            except (PhotoVaultError, OSError, ValueError) as exc:
                return exc

    with progress:
        results = await asyncio.gather(*(one(path) for path in paths))
    failed = False
    for path, result in zip(paths, results, strict=True):
        if isinstance(result, Photo):
            term.line(f"{result.id}  {path}")
            continue
        failed = True
        if isinstance(result, PhotoVaultError):
            term.error(result.reason, f"{path}: {result.message}")
        elif isinstance(result, OSError):
            term.error("FILE_UNREADABLE", f"{path}: {result.strerror or result}")
        else:
            term.error("UNSUPPORTED_FILE", f"{path}: {result}")
    return EXIT_ERROR if failed else EXIT_OK


async def _ls(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    photos: list[Photo] = []
    async for photo in pv.iter_photos(
        page_size=min(args.limit, 500), tags=args.tag, query=args.query
    ):
        photos.append(photo)
        if len(photos) >= args.limit:
            break
    if args.json:
        term.line(json.dumps([render.photo_record(p) for p in photos], indent=2))
    elif photos:
        term.out.print(render.photos_table(photos))
    else:
        term.err.print("no photos", markup=False)
    return EXIT_OK


async def _get(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    if args.url and args.variant:
        (url,) = await pv.batch_get_photo_urls([args.id], variant=args.variant)
        if url.variant != args.variant:
            # The server's answer while the variant is not ready: the original's URL.
            term.err.print(f"{args.variant} is not ready: the original's URL", markup=False)
        term.line(url.url)
        return EXIT_OK
    if args.url:
        term.line(await pv.get_url(args.id))
        return EXIT_OK
    photo = await pv.get_photo(args.id)
    if args.json:
        term.line(json.dumps(render.photo_record(photo), indent=2))
    else:
        term.out.print(render.photo_details(photo))
    return EXIT_OK


async def _each_id(
    ids: Sequence[str], term: Terminal, act: Callable[[str], Awaitable[object]], done: str
) -> int:
    """`act` on every id in turn, a line for each (`done` and the id, or the error); the
    command fails when any id did."""
    status = EXIT_OK
    for photo_id in ids:
        try:
            await act(photo_id)
        except PhotoVaultError as exc:
            term.error(exc.reason, f"{photo_id}: {exc.message}")
            status = EXIT_ERROR
        else:
            term.line(f"{done} {photo_id}")
    return status


async def _rm(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    return await _each_id(args.ids, term, pv.delete_photo, "deleted")


async def _trash(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    return await _each_id(args.ids, term, pv.trash_photo, "trashed")


async def _restore(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    return await _each_id(args.ids, term, pv.restore_photo, "restored")


def _album_record(album: Album) -> dict[str, object]:
    return {
        "id": album.id,
        "title": album.title,
        "description": album.description,
        "photo_count": album.photo_count,
        "cover_photo_id": album.cover_photo_id,
        "create_time": album.create_time.isoformat() if album.create_time else None,
    }


async def _album_create(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    album = await pv.create_album(args.title, description=args.description)
    term.line(json.dumps(_album_record(album), indent=2) if args.json else album.id)
    return EXIT_OK


async def _album_ls(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    albums = [a async for a in pv.iter_albums(page_size=500)]
    if args.json:
        term.line(json.dumps([_album_record(a) for a in albums], indent=2))
    elif not albums:
        term.err.print("no albums", markup=False)
    for album in [] if args.json else albums:
        term.line(f"{album.id}  {album.photo_count:>6} photos  {album.title}")
    return EXIT_OK


async def _album_add(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    album = await pv.add_album_photos(args.album, args.ids)
    term.line(f"{album.id}: {album.photo_count} photos")
    return EXIT_OK


async def _album_rm(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    """Takes photos out of the album, or, without photo ids, deletes the album (its photos
    stay)."""
    if not args.ids:
        await pv.delete_album(args.album)
        term.line(f"deleted album {args.album}")
        return EXIT_OK
    album = await pv.remove_album_photos(args.album, args.ids)
    term.line(f"{album.id}: {album.photo_count} photos")
    return EXIT_OK


def _duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`: a share link's lifetime (the server allows at most 365 days)."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 12h or 30m")
    return timedelta(**{units[unit]: int(number)})


def _read_password() -> str:
    """From the terminal without echo, or the first line of standard input when piped (never
    from the command line, where other users and the shell history would see it)."""
    if sys.stdin.isatty():
        return getpass.getpass("share link password: ")
    return sys.stdin.readline().rstrip("\r\n")


async def _share(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    password = _read_password() if args.password else ""
    if args.password and not password:
        term.error("usage", "--password: the password read was empty")
        return EXIT_USAGE
    link = await pv.create_share_link(
        album_id=args.album,
        expire_time=datetime.now(UTC) + args.expires,
        allow_original=args.allow_original,
        password=password,
    )
    if args.json:
        record = {
            "id": link.id,
            "token": link.token,
            "album_id": link.album_id,
            "expire_time": link.expire_time.isoformat() if link.expire_time else None,
            "allow_original": link.allow_original,
            "has_password": link.has_password,
        }
        term.line(json.dumps(record, indent=2))
    else:
        term.line(link.token)
        expires = link.expire_time.isoformat() if link.expire_time else "?"
        term.err.print(f"share link {link.id}, until {expires}", markup=False)
    return EXIT_OK


async def _account(pv: PhotoVaultClient, args: argparse.Namespace, term: Terminal) -> int:
    account = await pv.get_account()
    if args.json:
        term.line(json.dumps(render.account_record(account), indent=2))
    else:
        term.out.print(render.account_details(account))
    return EXIT_OK


# Running a command -------------------------------------------------------------------------


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    """The argparse `func` of a command: resolves target and token, opens a client, maps
    errors to exit codes."""

    def run(args: argparse.Namespace) -> int:
        term = Terminal.standard()
        target = args.target or os.environ.get(ENV_TARGET) or DEFAULT_TARGET
        token = args.token or os.environ.get(ENV_TOKEN)
        if not token:
            term.error("usage", f"no token: pass --token or set {ENV_TOKEN}")
            return EXIT_USAGE

        async def call() -> int:
            async with PhotoVaultClient.for_target(target, token=token, timeout=args.timeout) as pv:
                return await command(pv, args, term)

        try:
            return asyncio.run(call())
        except PhotoVaultError as exc:
            term.error(exc.reason, exc.message)
            return EXIT_ERROR

    return run


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--target",
        help=f"host:port (gRPC), grpcs://host:port (gRPC, TLS) or http(s)://URL (Connect); "
        f"default ${ENV_TARGET} or {DEFAULT_TARGET}",
    )
    group.add_argument("--token", help=f"bearer token; default ${ENV_TOKEN}")
    group.add_argument(
        "--timeout", type=float, default=30.0, help="deadline of each call in seconds (30)"
    )
    return parent


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_client_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Adds upload, ls, get, rm, trash, restore, album, share and account; each sets
    `func(args) -> exit code`."""
    common = [_connection_options()]

    upload = subparsers.add_parser(
        "upload", parents=common, help="upload photos", description="Upload photos."
    )
    upload.add_argument("files", nargs="+", metavar="FILE", help="image files")
    upload.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    upload.add_argument("--title", help="title of every uploaded photo")
    upload.add_argument(
        "--skip-duplicates",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="do not upload a file one of your photos already holds: print that photo's id "
        "(the default; --no-skip-duplicates uploads it again as a new photo)",
    )
    upload.add_argument("--description", help="description of every uploaded photo")
    upload.add_argument("--public", action="store_true", help="anyone with the URL may view")
    upload.add_argument(
        "--resume",
        action="store_true",
        help="finish an upload in parts that was interrupted (its state is kept beside the "
        f"file, FILE{STATE_SUFFIX}), sending only the parts not yet stored",
    )
    upload.add_argument(
        "--parts-in-flight",
        type=_positive,
        default=DEFAULT_PARTS_IN_FLIGHT,
        metavar="N",
        help=f"parts of a large file sent at once ({DEFAULT_PARTS_IN_FLIGHT})",
    )
    upload.add_argument(
        "--multipart-threshold",
        type=_positive,
        default=DEFAULT_MULTIPART_THRESHOLD,
        metavar="BYTES",
        help=f"files larger than this go in parts ({DEFAULT_MULTIPART_THRESHOLD})",
    )
    upload.set_defaults(func=_runner(_upload))

    ls = subparsers.add_parser(
        "ls", parents=common, help="list photos", description="List your photos, newest first."
    )
    ls.add_argument("--tag", action="append", default=[], help="only with this tag (repeatable)")
    ls.add_argument("--query", default="", help="only photos whose text contains these words")
    ls.add_argument("--limit", type=_positive, default=1000, help="at most this many (1000)")
    ls.add_argument("--json", action="store_true", help="JSON instead of a table")
    ls.set_defaults(func=_runner(_ls))

    get = subparsers.add_parser(
        "get", parents=common, help="show a photo", description="Show one photo."
    )
    get.add_argument("id", help="photo id")
    get.add_argument("--url", action="store_true", help="print only its download URL")
    get.add_argument(
        "--variant",
        default="",
        metavar="NAME",
        help="with --url: that variant's URL (e.g. thumb, preview); the original's while the "
        "variant is not ready",
    )
    get.add_argument("--json", action="store_true", help="JSON instead of a table")
    get.set_defaults(func=_runner(_get))

    rm = subparsers.add_parser(
        "rm", parents=common, help="delete photos", description="Delete photos."
    )
    rm.add_argument("ids", nargs="+", metavar="ID", help="photo id")
    rm.set_defaults(func=_runner(_rm))

    trash = subparsers.add_parser(
        "trash",
        parents=common,
        help="move photos to the trash",
        description="Move photos to the trash: hidden until restored, deleted for good by the "
        "server after its retention (30 days by default).",
    )
    trash.add_argument("ids", nargs="+", metavar="ID", help="photo id")
    trash.set_defaults(func=_runner(_trash))

    restore = subparsers.add_parser(
        "restore",
        parents=common,
        help="restore photos from the trash",
        description="Bring trashed photos back.",
    )
    restore.add_argument("ids", nargs="+", metavar="ID", help="photo id")
    restore.set_defaults(func=_runner(_restore))

    album = subparsers.add_parser(
        "album",
        help="manage albums",
        description="Albums: named sets of your photos (a photo may be in many).",
    )
    album_commands = album.add_subparsers(dest="album_command", required=True)
    create = album_commands.add_parser(
        "create", parents=common, help="create an album", description="Create an empty album."
    )
    create.add_argument("title", help="the album's title")
    create.add_argument("--description", default="", help="the album's description")
    create.add_argument("--json", action="store_true", help="JSON instead of the id")
    create.set_defaults(func=_runner(_album_create))
    album_ls = album_commands.add_parser(
        "ls", parents=common, help="list albums", description="List your albums, newest first."
    )
    album_ls.add_argument("--json", action="store_true", help="JSON instead of lines")
    album_ls.set_defaults(func=_runner(_album_ls))
    add = album_commands.add_parser(
        "add",
        parents=common,
        help="add photos to an album",
        description="Add up to 100 of your photos to an album (all or nothing).",
    )
    add.add_argument("album", metavar="ALBUM", help="album id")
    add.add_argument("ids", nargs="+", metavar="ID", help="photo id")
    add.set_defaults(func=_runner(_album_add))
    album_rm = album_commands.add_parser(
        "rm",
        parents=common,
        help="take photos out of an album, or delete it",
        description="Take photos out of an album (they stay in your library); without photo "
        "ids, delete the album itself and its share links (its photos stay).",
    )
    album_rm.add_argument("album", metavar="ALBUM", help="album id")
    album_rm.add_argument("ids", nargs="*", metavar="ID", help="photo id")
    album_rm.set_defaults(func=_runner(_album_rm))

    share = subparsers.add_parser(
        "share",
        parents=common,
        help="share an album by link",
        description="Create a link to an album that anyone holding its token can view (no "
        "account needed) until it expires or is revoked; prints the token, shown only this "
        "once.",
    )
    share.add_argument("album", metavar="ALBUM", help="album id")
    share.add_argument(
        "--expires",
        type=_duration,
        default=timedelta(days=7),
        metavar="DURATION",
        help="lifetime: 7d, 12h, 30m (7d; at most 365d)",
    )
    share.add_argument(
        "--password",
        action="store_true",
        help="ask for a password the viewers must give (read from the terminal, or from "
        "standard input when piped)",
    )
    share.add_argument(
        "--allow-original", action="store_true", help="also serve the originals, not just variants"
    )
    share.add_argument("--json", action="store_true", help="JSON instead of the token")
    share.set_defaults(func=_runner(_share))

    account = subparsers.add_parser(
        "account", parents=common, help="show usage and quota", description="Usage and quota."
    )
    account.add_argument("--json", action="store_true", help="JSON instead of a table")
    account.set_defaults(func=_runner(_account))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photovault",
        description="PhotoVault client commands.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_client_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one client command; returns its exit code (2 for usage errors)."""
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
