"""SQL repositories, one per aggregate, implementing the repository ports of ``domain.ports``."""

from infra.db.repositories.api_keys import SqlApiKeyRepository
from infra.db.repositories.checkpoints import SqlCheckpointRepository
from infra.db.repositories.metrics import SqlMetricRepository
from infra.db.repositories.optimizations import SqlOptimizationRepository
from infra.db.repositories.projects import SqlProjectRepository
from infra.db.repositories.runs import SqlRunRepository
from infra.db.repositories.workflows import SqlWorkflowRepository

__all__ = [
    "SqlApiKeyRepository",
    "SqlCheckpointRepository",
    "SqlMetricRepository",
    "SqlOptimizationRepository",
    "SqlProjectRepository",
    "SqlRunRepository",
    "SqlWorkflowRepository",
]
