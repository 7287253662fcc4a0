"""Reads on a streaming replica (DATABASE_READ_URL), writes and what must see them on the
primary: the one place that picks a pool per call.

Read-your-writes, across a fleet. After a write that a caller's later reads could see (a photo
confirmed, changed, trashed, restored, deleted, processed), the primary's WAL position
(`pg_current_wal_lsn()`, taken after the commit, so past its commit record) is recorded as that
user's *write mark*, in Redis (redis_write_marks.py) so that every process and Lambda serving
the user sees it, and in this process. A read of that user goes to the replica only once the
replica has replayed past the mark (`pg_last_wal_replay_lsn()`); until then, to the primary.
Precise, unlike a "sticky for N seconds" rule: a replica that keeps up serves the user again
within a check interval, one that falls behind never serves a stale page to the writer. Marks
expire once a replica the router would use must have replayed them (argued at `mark_ttl`), so
idle users cost no memory.

The router measures whichever server its check reaches: behind an endpoint that balances over
several replicas, a check and a read may reach different ones. So a read for a user with a live
mark checks it again where it runs, in the read's own transaction (ReplicaPhotoRepository).

When the marks cannot be read (Redis down or slow), the read goes to the primary: a stale
page to a writer is a correctness bug, a read on the primary is only load. A mark that could
not be written (Redis failing at that moment) leaves other processes unaware for at most the
lag bound; this process keeps its own.

The replica's lag is measured, not trusted: every check (at most one per check interval, made
by the first read that finds the last one stale, so no background task is needed: Lambda
freezes those) asks the replica how far it has replayed and the time of the last transaction it
replayed, then the primary for its position and clock. Caught up with that position: no lag (an
idle primary too). Behind it: the lag is the primary's clock minus that last replayed commit's
time, never less than the true lag (every commit after it is still to come), and measured on
one clock, the primary's. A replica down, failing a read, lagging past the bound or not yet
measured sends every read to the primary until a later check finds it well.

A replica that reports no replay position (not a streaming standby; an Aurora reader on its
shared storage may be one, not verified here) cannot be measured: it serves users without a
live mark, and marks are then honoured for their whole life."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar
from uuid import UUID

import asyncpg
import structlog
from msgspec import Struct, field

from photovault_server.core.album_models import AlbumEdit
from photovault_server.core.errors import Unavailable
from photovault_server.core.models import (
    Cursor,
    ImageMetadata,
    Photo,
    PhotoChanges,
    PhotoQuery,
    PhotoVariant,
)

from .postgres import PostgresPhotoRepository
from .postgres_albums import PostgresAlbumRepository

if TYPE_CHECKING:
    from .postgres import _Conn

log = structlog.get_logger(__name__)
T = TypeVar("T")

# An LSN above any real one: "this user wrote, and where is unknown" (the primary did not say).
UNKNOWN_LSN = 2**64 - 1
# Seconds between checks of a replica found down.
_DOWN_RECHECK = 5.0

# The mark the replica must have replayed for the read in progress (None: no such need).
_REQUIRED_LSN: ContextVar[int | None] = ContextVar("photovault_required_lsn", default=None)


class NotReplayed(Exception):
    """The replica this read reached has not replayed the reader's last write."""


Reason = Literal[
    "replica", "read_your_writes", "marks_unreadable", "replica_unavailable", "replica_lagging"
]
REASONS: tuple[Reason, ...] = (
    "replica",
    "read_your_writes",
    "marks_unreadable",
    "replica_unavailable",
    "replica_lagging",
)


class WriteMarks(Protocol):
    """Per user, the highest primary LSN their reads must see, for a bounded time."""

    async def get(self, user: str) -> int | None:
        """The user's live mark (None: none); raises when it cannot tell."""
        ...

    async def put(self, user: str, lsn: int, ttl: timedelta) -> None:
        """Raises the user's mark to `lsn` (never lowers it) for `ttl` from now."""
        ...


class LocalWriteMarks:
    """This process's marks: enough for one process, and kept beside the shared ones so that a
    mark Redis failed to store still holds where the write was made."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._marks: dict[str, tuple[int, float]] = {}

    async def get(self, user: str) -> int | None:
        found = self._marks.get(user)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._marks[user]
            return None
        return found[0]

    async def put(self, user: str, lsn: int, ttl: timedelta) -> None:
        now = self._clock()
        if len(self._marks) > 10_000:  # bounded: expired ones go first
            self._marks = {u: m for u, m in self._marks.items() if m[1] > now}
        current = self._marks.get(user)
        if current is not None and current[1] > now:
            lsn = max(lsn, current[0])
        self._marks[user] = (lsn, now + ttl.total_seconds())


class ReadStats(Struct):
    """Routed reads by where they went and why (observability.py exports them)."""

    reads: dict[tuple[str, Reason], int] = field(
        default_factory=lambda: {
            ("replica" if r == "replica" else "primary", r): 0 for r in REASONS
        }
    )
    # The replica's measured lag in seconds at the last check (None: not measurable yet).
    lag_seconds: float | None = None
    replica_failures: int = 0

    def count(self, reason: Reason) -> None:
        self.reads["replica" if reason == "replica" else "primary", reason] += 1


Health = Literal["unknown", "ok", "lagging", "down"]


class ReadRouter:
    """Holds both pools; says, per read, which one serves it, and records writes' marks."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replica: asyncpg.Pool,
        *,
        marks: WriteMarks | None = None,
        max_lag: timedelta = timedelta(seconds=2),
        check_interval: timedelta | None = None,
        check_timeout: timedelta = timedelta(seconds=1),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self._shared = marks
        self._local = LocalWriteMarks(clock)
        self._max_lag = max_lag.total_seconds()
        interval = check_interval or min(max_lag / 4, timedelta(seconds=1))
        self._interval = interval.total_seconds()
        self._check_timeout = check_timeout.total_seconds()
        self._clock = clock
        self._replayed: int | None = None  # the replica's replay LSN at the last check
        self._measurable = True
        self._health: Health = "unknown"
        self._marks_failing = False
        self._checked_at: float | None = None
        self._check_lock = asyncio.Lock()
        self.stats = ReadStats()

    @property
    def health(self) -> Health:
        return self._health

    @property
    def mark_ttl(self) -> timedelta:
        """How long a write mark lives. A check that starts at c and finds the replica within
        the bound shows every commit made by c - max_lag replayed. A read at r uses the verdict
        of a check started at c >= r - interval - 2 * check_timeout (a stale verdict makes the
        next read check again; reads meanwhile use the last one). So a write committed at t is
        on any replica the router uses from r >= t + max_lag + interval + 2 * check_timeout;
        one more interval covers commit-time order against WAL order and clock rates."""
        return timedelta(seconds=self._max_lag + 2 * self._interval + 2 * self._check_timeout)

    # -- the replica's state

    async def check(self) -> Health:
        """Measures the replica now (tests call it to see a change at once; reads call it
        when the last check is older than the interval)."""
        async with self._check_lock:
            await self._check()
        return self._health

    async def _check(self) -> None:
        self._checked_at = self._clock()
        try:
            async with asyncio.timeout(self._check_timeout):
                # The replica first: the primary's position and clock, read after, can then
                # only be later, and the lag only come out longer.
                replica = await self.replica.fetchrow(
                    "SELECT pg_last_wal_replay_lsn() AS lsn, "
                    "pg_last_xact_replay_timestamp() AS replayed_at"
                )
        except Exception as exc:
            self._down(exc)
            return
        assert replica is not None
        if replica["lsn"] is None:
            # No replay position: not a streaming standby. Usable, but not measurable.
            self._measurable, self._replayed, self._health = False, None, "ok"
            self.stats.lag_seconds = None
            return
        self._measurable, self._replayed = True, int(replica["lsn"])
        try:
            async with asyncio.timeout(self._check_timeout):
                primary = await self.primary.fetchrow(
                    "SELECT pg_current_wal_lsn() AS lsn, clock_timestamp() AS now"
                )
        except Exception as exc:  # the primary's own trouble is for its callers to see
            log.warning("replica_check_primary_failed", error=type(exc).__name__)
            self._health, self.stats.lag_seconds = "unknown", None
            return
        assert primary is not None
        lag: float | None
        if self._replayed >= int(primary["lsn"]):
            lag = 0.0
        elif replica["replayed_at"] is None:
            lag = None  # behind, and no transaction replayed since it started: unknown
        else:
            lag = max(0.0, (primary["now"] - replica["replayed_at"]).total_seconds())
        self.stats.lag_seconds = lag
        self._health = "ok" if lag is not None and lag <= self._max_lag else "lagging"

    def _down(self, exc: BaseException) -> None:
        if self._health != "down":
            log.warning("replica_unavailable", error=type(exc).__name__)
        self._health = "down"
        self._checked_at = self._clock()

    async def _fresh_health(self) -> Health:
        checked = self._checked_at
        # A replica found down is tried again less often: a check of a host that does not
        # answer costs the read that makes it up to the check timeout.
        interval = max(self._interval, _DOWN_RECHECK) if self._health == "down" else self._interval
        stale = checked is None or self._clock() - checked >= interval
        # Callers arriving during a check use the last verdict rather than queue behind it.
        if stale and not self._check_lock.locked():
            async with self._check_lock:
                await self._check()
        return self._health

    # -- routing

    async def route(self, user: str) -> Reason:
        """Where a read of `user`'s data goes now: "replica", or why the primary."""
        reason, _ = await self._route(user)
        return reason

    async def _route(self, user: str) -> tuple[Reason, int | None]:
        """The route, and for the replica the user's mark that it must have replayed."""
        health = await self._fresh_health()
        if health == "down":
            return "replica_unavailable", None
        if health != "ok":
            return "replica_lagging", None  # behind the bound, or not measured yet
        try:
            mark = await self._mark(user)
        except Exception as exc:
            if not self._marks_failing:  # logged once per outage, not once per read
                log.warning("write_marks_unreadable", error=type(exc).__name__)
            self._marks_failing = True
            return "marks_unreadable", None  # cannot tell whether they wrote: the safe side
        self._marks_failing = False
        if mark is None:
            return "replica", None
        if self._measurable and self._replayed is not None and mark <= self._replayed:
            # The last check saw it replayed, on the server that check reached; the read
            # checks again on its own server (ReplicaPhotoRepository).
            return "replica", mark
        return "read_your_writes", None

    async def _mark(self, user: str) -> int | None:
        local = await self._local.get(user)
        shared = await self._shared.get(user) if self._shared is not None else None
        marks = [m for m in (local, shared) if m is not None]
        return max(marks) if marks else None

    async def read(
        self,
        user: str,
        on_replica: Callable[[], Awaitable[T]],
        on_primary: Callable[[], Awaitable[T]],
    ) -> T:
        """Runs the read where `route` says; a replica that fails it is marked down and the
        read runs again on the primary (a bug would fail there the same way). A replica pool
        with no connection free within the acquire timeout (busy, or a host that does not
        answer) sends that read to the primary, whose own bound sheds it if it is busy too;
        the next check tells a dead replica from a busy one."""
        reason, mark = await self._route(user)
        if reason == "replica":
            required = _REQUIRED_LSN.set(mark)
            try:
                result = await on_replica()
            except NotReplayed:
                reason = "read_your_writes"  # another replica behind the same URL: not down
            except Unavailable as exc:
                if exc.reason != "DB_POOL_EXHAUSTED":
                    self._replica_failed(exc)
                reason = "replica_unavailable"
            except asyncpg.PostgresError as exc:  # e.g. cancelled by a recovery conflict
                self._replica_failed(exc)
                reason = "replica_unavailable"
            else:
                self.stats.count("replica")
                return result
            finally:
                _REQUIRED_LSN.reset(required)
        self.stats.count(reason)
        return await on_primary()

    def _replica_failed(self, exc: BaseException) -> None:
        self.stats.replica_failures += 1
        self._down(exc)

    async def wrote(self, users: Collection[str]) -> None:
        """After a committed write visible to `users`' reads: their marks. Never raises (the
        write is done; failing its call now would make the caller retry it)."""
        if not users:
            return
        try:
            async with asyncio.timeout(self._check_timeout):
                lsn = int(await self.primary.fetchval("SELECT pg_current_wal_lsn()"))
        except Exception as exc:
            log.warning("write_lsn_unknown", error=type(exc).__name__)
            lsn = UNKNOWN_LSN
        ttl = self.mark_ttl
        for user in users:
            await self._local.put(user, lsn, ttl)
            if self._shared is not None:
                try:
                    await self._shared.put(user, lsn, ttl)
                except Exception as exc:
                    log.warning("write_mark_not_shared", error=type(exc).__name__)


class ReplicaPhotoRepository(PostgresPhotoRepository):
    """The repository on the replica's pool. A read for a user with a live mark runs in one
    read-only transaction that first checks, on the server it reached, that the mark is
    replayed: behind an endpoint that balances over several replicas (RDS Proxy's read-only
    endpoint), the router's last check may have reached another, further-ahead one, and only
    a transaction keeps both statements on one server. Users without a mark pay nothing."""

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[_Conn]:
        required = _REQUIRED_LSN.get()
        async with super()._conn() as conn:
            if required is None:
                yield conn
                return
            async with conn.transaction(readonly=True):
                replayed = await conn.fetchval("SELECT pg_last_wal_replay_lsn()")
                if replayed is None or int(replayed) < required:
                    raise NotReplayed
                yield conn


class RoutedPhotoRepository(PostgresPhotoRepository):
    """PostgresPhotoRepository on the primary, whose owner-scoped reads (photos, listings,
    trash) the router may send to the replica, and whose writes those reads must see leave a
    mark. Everything else, reads within write paths included (uploads, checksums, accounts,
    jobs), stays on the primary: the inherited methods."""

    def __init__(
        self,
        router: ReadRouter,
        *,
        acquire_timeout: float | None = None,
    ) -> None:
        super().__init__(router.primary, acquire_timeout=acquire_timeout)
        self.router = router
        self._replica = ReplicaPhotoRepository(router.replica, acquire_timeout=acquire_timeout)

    # Reads.

    async def get_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        return await self.router.read(
            owner_id,
            lambda: self._replica.get_photo(owner_id, photo_id),
            lambda: super(RoutedPhotoRepository, self).get_photo(owner_id, photo_id),
        )

    async def get_photos(self, owner_id: str, photo_ids: Sequence[UUID]) -> dict[UUID, Photo]:
        return await self.router.read(
            owner_id,
            lambda: self._replica.get_photos(owner_id, photo_ids),
            lambda: super(RoutedPhotoRepository, self).get_photos(owner_id, photo_ids),
        )

    async def list_photos(self, query: PhotoQuery) -> list[Photo]:
        return await self.router.read(
            query.owner_id,
            lambda: self._replica.list_photos(query),
            lambda: super(RoutedPhotoRepository, self).list_photos(query),
        )

    async def list_trash(self, owner_id: str, *, after: Cursor | None, limit: int) -> list[Photo]:
        return await self.router.read(
            owner_id,
            lambda: self._replica.list_trash(owner_id, after=after, limit=limit),
            lambda: super(RoutedPhotoRepository, self).list_trash(
                owner_id, after=after, limit=limit
            ),
        )

    # Writes those reads see: each leaves its owner's mark once committed.

    async def confirm_upload(self, photo: Photo, *, now: datetime) -> Photo | None:
        result = await super().confirm_upload(photo, now=now)
        await self.router.wrote([photo.owner_id])
        return result

    async def update_photo(
        self, owner_id: str, photo_id: UUID, changes: PhotoChanges, now: datetime
    ) -> Photo | None:
        result = await super().update_photo(owner_id, photo_id, changes, now)
        if result is not None:
            await self.router.wrote([owner_id])
        return result

    async def delete_photo(
        self, owner_id: str, photo_id: UUID, *, upload_window: timedelta
    ) -> Photo | None:
        result = await super().delete_photo(owner_id, photo_id, upload_window=upload_window)
        if result is not None:
            await self.router.wrote([owner_id])
        return result

    async def trash_photo(self, owner_id: str, photo_id: UUID, now: datetime) -> Photo | None:
        result = await super().trash_photo(owner_id, photo_id, now)
        if result is not None:
            await self.router.wrote([owner_id])
        return result

    async def restore_photo(self, owner_id: str, photo_id: UUID) -> Photo | None:
        result = await super().restore_photo(owner_id, photo_id)
        if result is not None:
            await self.router.wrote([owner_id])
        return result

    async def purge_trash(
        self, *, trashed_before: datetime, limit: int, upload_window: timedelta
    ) -> list[Photo]:
        purged = await super().purge_trash(
            trashed_before=trashed_before, limit=limit, upload_window=upload_window
        )
        await self.router.wrote({p.owner_id for p in purged})
        return purged

    async def finish_photo_job(
        self,
        owner_id: str,
        photo_id: UUID,
        metadata: ImageMetadata,
        variants: Sequence[PhotoVariant],
        now: datetime,
    ) -> bool:
        found = await super().finish_photo_job(owner_id, photo_id, metadata, variants, now)
        if found:
            await self.router.wrote([owner_id])
        return found

    async def fail_photo_job(
        self, owner_id: str, photo_id: UUID, reason: str, now: datetime
    ) -> bool:
        found = await super().fail_photo_job(owner_id, photo_id, reason, now)
        if found:
            await self.router.wrote([owner_id])
        return found


class RoutedAlbumRepository(PostgresAlbumRepository):
    """Albums on the primary. Their membership decides what ListPhotos(album_id) shows, a read
    the router may send to the replica: each membership write leaves its owner's mark."""

    def __init__(self, router: ReadRouter, *, acquire_timeout: float | None = None) -> None:
        super().__init__(router.primary, acquire_timeout=acquire_timeout)
        self.router = router

    async def add_album_photos(
        self,
        owner_id: str,
        album_id: UUID,
        photo_ids: Sequence[UUID],
        *,
        max_photos: int,
        now: datetime,
    ) -> AlbumEdit:
        edit = await super().add_album_photos(
            owner_id, album_id, photo_ids, max_photos=max_photos, now=now
        )
        await self.router.wrote([owner_id])
        return edit

    async def remove_album_photos(
        self, owner_id: str, album_id: UUID, photo_ids: Sequence[UUID], *, now: datetime
    ) -> AlbumEdit:
        edit = await super().remove_album_photos(owner_id, album_id, photo_ids, now=now)
        await self.router.wrote([owner_id])
        return edit

    async def delete_album(self, owner_id: str, album_id: UUID) -> bool:
        deleted = await super().delete_album(owner_id, album_id)
        if deleted:
            await self.router.wrote([owner_id])
        return deleted
