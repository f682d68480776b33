"""Use cases of PyTorch-workflow, one module per area; each takes its ports at construction."""

from ptw.domain.services.access import AccessService
from ptw.domain.services.execution import ExecutionService, Outcome
from ptw.domain.services.metrics import MetricService
from ptw.domain.services.optimizations import OptimizationService
from ptw.domain.services.pool import PoolService
from ptw.domain.services.recovery import RecoveryService
from ptw.domain.services.runs import RunService
from ptw.domain.services.tracking import TrackingService
from ptw.domain.services.workflows import WorkflowService

__all__ = [
    "AccessService",
    "ExecutionService",
    "MetricService",
    "OptimizationService",
    "Outcome",
    "PoolService",
    "RecoveryService",
    "RunService",
    "TrackingService",
    "WorkflowService",
]
