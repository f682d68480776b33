"""Use cases of PyTorch-workflow, one module per area; each takes its ports at construction."""

from domain.services.access import AccessService
from domain.services.execution import ExecutionService, Outcome
from domain.services.metrics import MetricService
from domain.services.optimizations import OptimizationService
from domain.services.pool import PoolService
from domain.services.recovery import RecoveryService
from domain.services.runs import RunService
from domain.services.workflows import WorkflowService

__all__ = [
    "AccessService",
    "ExecutionService",
    "MetricService",
    "OptimizationService",
    "Outcome",
    "PoolService",
    "RecoveryService",
    "RunService",
    "WorkflowService",
]
