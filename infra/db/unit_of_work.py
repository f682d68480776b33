"""The SQL unit of work: one session and transaction shared by every repository of a use case."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ptw.infra.db.repositories import (
    SqlApiKeyRepository,
    SqlAttemptRepository,
    SqlCheckpointRepository,
    SqlMetricRepository,
    SqlOptimizationRepository,
    SqlProjectRepository,
    SqlRetentionRepository,
    SqlRunLogRepository,
    SqlRunRepository,
    SqlWorkflowRepository,
)


class SqlUnitOfWork:
    """``async with uow:`` opens the transaction; leaving it without ``commit()`` rolls back."""

    projects: SqlProjectRepository
    api_keys: SqlApiKeyRepository
    workflows: SqlWorkflowRepository
    runs: SqlRunRepository
    metrics: SqlMetricRepository
    checkpoints: SqlCheckpointRepository
    optimizations: SqlOptimizationRepository
    run_logs: SqlRunLogRepository
    attempts: SqlAttemptRepository
    retention: SqlRetentionRepository

    @dataclass(frozen=True)
    class Factory:
        """What ``Database.uow_factory()`` returns: call it for a fresh unit of work."""

        sessions: async_sessionmaker[AsyncSession]
        dialect: str

        def __call__(self) -> SqlUnitOfWork:
            return SqlUnitOfWork(self.sessions, self.dialect)

    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._dialect = dialect
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("this unit of work is already open")
        session = self._sessions()
        self._session = session
        self.projects = SqlProjectRepository(session, self._dialect)
        self.api_keys = SqlApiKeyRepository(session, self._dialect)
        self.workflows = SqlWorkflowRepository(session, self._dialect)
        self.runs = SqlRunRepository(session, self._dialect)
        self.metrics = SqlMetricRepository(session, self._dialect)
        self.checkpoints = SqlCheckpointRepository(session, self._dialect)
        self.optimizations = SqlOptimizationRepository(session, self._dialect)
        self.run_logs = SqlRunLogRepository(session, self._dialect)
        self.attempts = SqlAttemptRepository(session, self._dialect)
        self.retention = SqlRetentionRepository(session, self._dialect)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self.session
        try:
            await session.rollback()  # a no-op after commit(); undoes everything otherwise
        finally:
            self._session = None
            await session.close()

    async def commit(self) -> None:
        await self.session.commit()
