"""Integration fixtures: each test gets its own migrated database, once on SQLite and once on PostgreSQL;
embedded services with a local executor pool of real runners (a module may override any of them)."""

from tests.fixtures.databases import database, uow_factory
from tests.fixtures.local_executors import actor, limits, pool, services, slots

__all__ = ["actor", "database", "limits", "pool", "services", "slots", "uow_factory"]
