"""The database: engine and sessions, migrations to head, readiness, and a count of SQL statements."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from ptw.infra.db.unit_of_work import SqlUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def asyncpg_ssl(url: URL) -> URL:
    """libpq's ``sslmode`` (what managed databases document) as asyncpg's ``ssl``, which takes the same
    modes (disable ... verify-full) but refuses ``sslmode``; the CA bundle comes from ``PGSSLROOTCERT``."""
    if url.get_driver_name() != "asyncpg" or "sslmode" not in url.query or "ssl" in url.query:
        return url
    query = dict(url.query)
    query["ssl"] = query.pop("sslmode")
    return url.set(query=query)


class Database:
    """One engine per process; ``uow_factory()`` is what the domain services are given."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        # hide_parameters: a failed statement's error (and so the log) shows the statement, never the
        # bound values, which are tenants' data (names, params, key prefixes).
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            else:
                # An in-memory database lives in one connection: share it, or each session sees another one.
                options["poolclass"] = StaticPool
        self.engine: AsyncEngine = create_async_engine(asyncpg_ssl(parsed), **options)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.statements = 0
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._count)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _tune_sqlite)

    def uow_factory(self) -> SqlUnitOfWork.Factory:
        return SqlUnitOfWork.Factory(self.sessions, self.dialect)

    async def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to ``revision``, in one transaction where the database allows it."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)

    async def require_head(self) -> None:
        """Refuse to start on a schema that is not at the migrations' head (only ``ptw db upgrade``
        migrates a shared database, so that a burst of workers never runs concurrent upgrades)."""
        async with self.engine.connect() as conn:
            current = await conn.run_sync(_current_heads)
        heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        if current != heads:
            at = ", ".join(sorted(current)) or "no schema"
            raise SchemaNotAtHead(
                f"the database is at {at}, not at {', '.join(sorted(heads))}: run `ptw db upgrade` first"
            )

    async def ping(self) -> bool:
        """Whether the database answers (for ``/readyz``)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()

    def _count(self, *_: object) -> None:
        self.statements += 1


class SchemaNotAtHead(RuntimeError):
    """The database's schema is older (or newer) than this release's migrations."""


def alembic_config() -> Config:
    """The migrations shipped inside the package, configured in code so no ``alembic.ini`` is needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def _current_heads(connection: Connection) -> set[str]:
    quiet = logging.getLogger("alembic.runtime.migration")
    level, quiet.level = quiet.level, logging.WARNING  # a check, not a migration: nothing to announce
    try:
        return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        quiet.setLevel(level)


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _tune_sqlite(dbapi_connection: Any, _record: object) -> None:
    # WAL lets readers run beside the one writer; the busy timeout makes concurrent writers of the
    # embedded server wait for the lock instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()
