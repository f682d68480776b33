"""Relational storage of PyTorch-workflow: SQLAlchemy models, repositories, unit of work and migrations."""

from infra.db.database import Database
from infra.db.unit_of_work import SqlUnitOfWork

__all__ = ["Database", "SqlUnitOfWork"]
