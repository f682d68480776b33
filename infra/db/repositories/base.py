"""What every SQL repository shares: its session, keyset pagination, and unique-violation mapping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Select, Table, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ptw.domain.errors import Conflict
from ptw.domain.ports import MAX_PAGE_SIZE, Page, PageRequest

T = TypeVar("T")


class SqlRepository:
    """Repositories write Core statements on the mapped tables and return the domain's dataclasses: no ORM
    identity map holds objects that an UPDATE statement would leave stale, and each method is the SQL it
    sends."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self.session = session
        self.dialect = dialect

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def upsert(self, table: Table) -> Any:
        """``INSERT`` with ``ON CONFLICT`` support, which each dialect spells in its own construct."""
        return postgresql.insert(table) if self.postgres else sqlite.insert(table)

    async def insert(self, table: Table, values: dict[str, Any], what: str) -> None:
        """Insert one row; a unique violation becomes the domain's Conflict (the transaction is then
        unusable on PostgreSQL; leaving the unit of work rolls it back)."""
        try:
            await self.session.execute(table.insert().values(values))
        except IntegrityError as e:
            if "unique" not in str(e.orig).lower():
                raise  # a broken foreign key is a bug of the caller, not a conflict
            raise Conflict(f"{what} already exists") from e

    async def page(
        self,
        stmt: Select[Any],
        table: Table,
        order: Sequence[str],
        request: PageRequest,
        to_domain: Callable[[Row[Any]], T],
        *,
        descending: bool = False,
    ) -> Page[T]:
        """Keyset pagination over ``order`` (its last column is the id, the tie-breaker): fetch one row more
        than asked to learn whether there is a next page."""
        first = max(1, min(request.first, MAX_PAGE_SIZE))
        columns = [table.c[name] for name in order]
        if request.after is not None:
            stmt = stmt.where(_after(table, order, request.after, descending))
        stmt = stmt.order_by(*(c.desc() if descending else c.asc() for c in columns)).limit(first + 1)
        rows = (await self.session.execute(stmt)).all()
        return Page([to_domain(r) for r in rows[:first]], has_next=len(rows) > first)


def _after(table: Table, order: Sequence[str], after: str, descending: bool) -> ColumnElement[bool]:
    """Rows past the cursor row ``after`` (an id); its sort values are looked up in the same statement.
    A cursor id that no longer exists compares as NULL and yields an empty page."""
    cursor = table.alias("cursor_row")
    values = [select(cursor.c[name]).where(cursor.c.id == after).scalar_subquery() for name in order[:-1]]
    here = tuple_(*(table.c[name] for name in order))
    there = tuple_(*values, literal(after))
    return here < there if descending else here > there
