"""The schema's migrations as shipped: numbered files applied in version order, recorded by
version, so two branches adding the same number (or skipping one) must fail here, not when a
deployment finds the version already applied."""

from __future__ import annotations

from photovault_server.adapters.migrations import NO_TRANSACTION, load_migrations


def test_versions_are_unique_consecutive_and_loaded_in_order() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_every_migration_has_sql() -> None:
    assert all(m.sql.strip() for m in load_migrations())


def test_the_no_transaction_marker_is_the_first_line_only() -> None:
    for migration in load_migrations():
        if migration.transactional:
            assert NO_TRANSACTION not in migration.sql
        else:
            assert migration.statements()
