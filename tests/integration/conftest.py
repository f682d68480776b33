"""Integration fixtures: each test gets its own migrated database, once on SQLite and once on PostgreSQL."""

from tests.fixtures.databases import database, uow_factory

__all__ = ["database", "uow_factory"]
