"""Databases of a test's own on the test server, dropped after (FORCE: whatever is still
connected), for tests that migrate from nothing or load more rows than the session's database
should carry."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

ADMIN_DATABASE_URL = os.environ.get(
    "PHOTOVAULT_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@asynccontextmanager
async def own_database(prefix: str) -> AsyncIterator[str]:
    """Creates an empty database named `prefix` plus a random suffix; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DATABASE_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield ADMIN_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_DATABASE_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
