"""Versioned SQL migrations: `migrations/NNNN_name.sql`, applied in order, each in its own
transaction, recorded in `schema_migrations`. A session advisory lock makes concurrent runs
(several containers starting at once) wait for each other; applied versions are skipped.

A migration whose first line is `-- photovault: no-transaction` runs outside a transaction,
one statement at a time (`CREATE INDEX CONCURRENTLY` on a live table cannot run in one). Its
statements must be idempotent (`IF NOT EXISTS`): a failure leaves the earlier ones applied and
the version unrecorded, so the next run starts it again. A `CONCURRENTLY` build that failed
leaves an INVALID index behind, which `IF NOT EXISTS` would take as done: the next run drops
it and builds it again. Statements are split at a `;` that ends a line, so such a migration
holds plain DDL only (no function bodies, no `;` at the end of a line inside a string)."""

from __future__ import annotations

import re
from importlib import resources

import asyncpg
from msgspec import Struct

# Any constant works; it only has to be the same for every process running migrations.
_LOCK_ID = 0x70686F746F7661  # "photova"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
NO_TRANSACTION = "-- photovault: no-transaction"
_CONCURRENT_INDEX = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
    re.IGNORECASE,
)


class Migration(Struct, frozen=True):
    version: int
    name: str
    sql: str

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION)

    def statements(self) -> list[str]:
        """The statements of a no-transaction migration, comments dropped, in order."""
        lines = [line for line in self.sql.splitlines() if not line.lstrip().startswith("--")]
        found = re.split(r";[ \t]*$", "\n".join(lines), flags=re.MULTILINE)
        return [statement.strip() for statement in found if statement.strip()]


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def migrate(
    conn: asyncpg.Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Applies the pending migrations (the shipped ones unless given); returns those it
    applied."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in load_migrations() if migrations is None else migrations:
            if migration.version in done:
                continue
            if migration.transactional:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await _record(conn, migration)
            else:
                for statement in migration.statements():
                    await _drop_invalid_index(conn, statement)
                    await conn.execute(statement)
                await _record(conn, migration)
            applied.append(migration)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)


async def _record(conn: asyncpg.Connection, migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
        migration.version,
        migration.name,
    )


async def _drop_invalid_index(conn: asyncpg.Connection, statement: str) -> None:
    """Before a `CREATE INDEX CONCURRENTLY`: drops the INVALID index an earlier failed build of
    it left behind (no other build can be running: the advisory lock is held)."""
    match = _CONCURRENT_INDEX.match(statement)
    if match is None:
        return
    invalid = await conn.fetchval(
        "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", match[1]
    )
    if invalid:
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {match[1]}")


async def ensure_database(url: str) -> bool:
    """Creates the URL's database when it does not exist yet (a fresh server has only
    `postgres`); returns whether it did."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name == "postgres":
        return False
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await admin.execute(f"CREATE DATABASE {quoted}")
    except asyncpg.DuplicateDatabaseError:
        return False  # created concurrently by another migrate
    finally:
        await admin.close()
    return True


async def migrate_database(url: str) -> list[Migration]:
    """What `photovault migrate` does: creates the URL's database if needed, then applies the
    pending migrations on their own connection; returns those it applied."""
    await ensure_database(url)
    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def behind_a_pooler(url: str) -> bool:
    """Whether `url` reaches Postgres through a proxy that listens elsewhere than the server:
    the server's own port (inet_server_port) differs from the URL's. PgBouncer on 6432 in
    front of 5432 is caught; a proxy on the server's own port (RDS Proxy on 5432) is not, so
    DATABASE_MIGRATION_URL stays the operator's explicit choice."""
    from urllib.parse import urlsplit

    conn = await asyncpg.connect(url, statement_cache_size=0)
    try:
        served_on = await conn.fetchval("SELECT inet_server_port()")
    finally:
        await conn.close()
    return served_on is not None and int(served_on) != (urlsplit(url).port or 5432)
