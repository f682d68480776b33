"""Artifacts of runs as users have them: listed, fetched by id, kept by retention, deleted with their run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ptw.domain.artifacts import KIND_CHECKPOINT, Retention, beyond_retention
from ptw.domain.errors import Conflict, NotFound
from ptw.domain.optimizations import OptimizationKind
from ptw.domain.ports import ArtifactFiles, UnitOfWork, UnitOfWorkFactory
from ptw.domain.runs import Checkpoint, Run
from ptw.domain.tenancy import Actor, Role

log = logging.getLogger(__name__)
# The best-by metric is read downsampled beyond this (extremes kept): the best is still among them.
MAX_BEST_BY_POINTS = 10_000


async def retention_for(uow: UnitOfWork, run: Run) -> Retention:
    """The run's workflow's retention; a search's trial is judged best by its objective unless it says."""
    retention = await uow.retention.get(run.workflow_id) or Retention()
    if retention.best_by is None and run.optimization_id is not None:
        optimization = await uow.optimizations.get(run.optimization_id)
        if optimization is not None and optimization.kind is OptimizationKind.HYPERPARAMETER_SEARCH:
            return Retention(retention.keep_last, optimization.objective, optimization.direction)
    return retention


async def prune_checkpoints(uow: UnitOfWork, run: Run) -> list[str]:
    """Delete the rows of the run's checkpoints beyond its retention, in the caller's transaction; the
    URIs of their files, to delete once it commits."""
    artifacts = await uow.checkpoints.for_run(run.id)
    retention = await retention_for(uow, run)
    if sum(a.kind == KIND_CHECKPOINT for a in artifacts) <= retention.keep_last:
        return []
    values = None
    if retention.best_by is not None:
        read = await uow.metrics.read(run.id, retention.best_by, MAX_BEST_BY_POINTS)
        values = dict(zip(read.steps.tolist(), read.values.tolist(), strict=True))
    gone = beyond_retention(artifacts, retention, values)
    await uow.checkpoints.delete([c.id for c in gone])
    return [c.uri for c in gone]


async def delete_files(files: ArtifactFiles | None, uris: Sequence[str]) -> None:
    if files is None or not uris:
        return
    try:
        await files.delete(uris)
    except Exception:  # the rows are gone already: a file left over costs space, never correctness
        log.warning("cannot delete %d artifact files (%s ...)", len(uris), uris[0], exc_info=True)


@dataclass
class ArtifactService:
    uow: UnitOfWorkFactory
    files: ArtifactFiles | None = None

    async def of_run(self, actor: Actor, run_id: str) -> list[Checkpoint]:
        async with self.uow() as uow:
            await _visible_run(uow, actor, run_id)
            return await uow.checkpoints.for_run(run_id)

    async def get(self, actor: Actor, artifact_id: str) -> Checkpoint:
        """An artifact of a run the actor may see; any other id is NOT_FOUND alike."""
        async with self.uow() as uow:
            artifact = await uow.checkpoints.get(artifact_id)
            run = await uow.runs.get(artifact.run_id) if artifact else None
        if artifact is None or run is None or not actor.can_see(run.project_id):
            raise NotFound.of("Artifact", artifact_id)
        return artifact

    async def delete_run(self, actor: Actor, run_id: str) -> Run:
        """Delete a run that ended, with everything it kept: metrics, output, attempts, artifacts and
        their files. A run still going is CONFLICT (cancel it first)."""
        async with self.uow() as uow:
            run = await _visible_run(uow, actor, run_id, for_update=True)
            actor.require(run.project_id, Role.MEMBER, "Run", run_id)
            if not run.status.terminal:
                raise Conflict(
                    f"run {run_id} is {run.status.value}: cancel it before deleting it",
                    status=run.status.value,
                )
            uris = [a.uri for a in await uow.checkpoints.for_run(run_id)]
            await uow.runs.delete(run_id)
            await uow.commit()
        await delete_files(self.files, uris)
        return run

    async def set_retention(self, workflow_id: str, retention: Retention) -> None:
        async with self.uow() as uow:
            await uow.retention.put(workflow_id, retention)
            await uow.commit()

    async def retention(self, workflow_id: str) -> Retention:
        async with self.uow() as uow:
            return await uow.retention.get(workflow_id) or Retention()


async def _visible_run(uow: UnitOfWork, actor: Actor, run_id: str, for_update: bool = False) -> Run:
    run = await uow.runs.get(run_id, for_update=for_update)
    if run is None or not actor.can_see(run.project_id):
        raise NotFound.of("Run", run_id)
    return run
