"""Relational storage of PyTorch-workflow: SQLAlchemy models, repositories, unit of work and migrations."""

from ptw.infra.db.database import Database
from ptw.infra.db.unit_of_work import SqlUnitOfWork

__all__ = ["Database", "SqlUnitOfWork"]
