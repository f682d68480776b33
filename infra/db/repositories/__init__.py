"""SQL repositories, one per aggregate, implementing the repository ports of ``domain.ports``."""

from ptw.infra.db.repositories.api_keys import SqlApiKeyRepository
from ptw.infra.db.repositories.checkpoints import SqlCheckpointRepository, SqlRetentionRepository
from ptw.infra.db.repositories.metrics import SqlMetricRepository
from ptw.infra.db.repositories.optimizations import SqlOptimizationRepository
from ptw.infra.db.repositories.projects import SqlProjectRepository
from ptw.infra.db.repositories.run_story import SqlAttemptRepository, SqlRunLogRepository
from ptw.infra.db.repositories.runs import SqlRunRepository
from ptw.infra.db.repositories.workflows import SqlWorkflowRepository

__all__ = [
    "SqlApiKeyRepository",
    "SqlAttemptRepository",
    "SqlCheckpointRepository",
    "SqlMetricRepository",
    "SqlOptimizationRepository",
    "SqlProjectRepository",
    "SqlRetentionRepository",
    "SqlRunLogRepository",
    "SqlRunRepository",
    "SqlWorkflowRepository",
]
