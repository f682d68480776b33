"""Hyperparameter search: 32 trials of digits-mlp with TPE and the median pruner on 4 executors, against the
same search run sequentially without pruning (1 executor, no pruner). Reports the wall-time ratio (target
<= 1/3) and the best validation accuracy of each (target: within 1 point).

Run: ``python -m bench.hpo [--trials 32] [--executors 4]`` (needs the PostgreSQL of the development
machine). Each search runs on the real services: the optimization driver, real executor children, and
the prune decisions taken through ``ctx.report``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import fresh_postgres, report
from ptw.domain.events import OptimizationProgressed, Progress, optimization_topic
from ptw.domain.optimizations import Direction, OptimizationKind, OptimizationStatus, ResultState
from ptw.domain.services.optimizations import OptimizationSpec
from ptw.domain.tenancy import Role
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import Services, bootstrap
from ptw.infra.settings import Settings
from ptw.lifecycle import prune_advisor

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "hidden": {"type": "int", "low": 16, "high": 256, "step": 16},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
}


async def search(
    services: Services, data_dir: Path, executors: int, parallel: int, pruner: str, trials: int
) -> dict[str, Any]:
    issued = await services.access.bootstrap_key(f"hpo-{pruner}-{executors}", Role.ADMIN)
    actor = await services.access.authenticate(issued.secret)
    workflow = await services.workflows.get_by_name(actor, "digits-mlp")
    pool = LocalExecutorPool(
        services.execution,
        services.metrics,
        services.bus,
        services.local_queue,
        services.registry,
        data_dir / "artifacts",
        slots=executors,
        prune_advisor=prune_advisor(services),
    )
    await pool.start()
    for slot in pool.slots:  # warm children before the clock starts, as a running server has them
        await slot.ready()
    driver = services.optimization_driver
    assert driver is not None
    driver.interval = 0.2
    driving = asyncio.create_task(driver.run())
    spec = OptimizationSpec(
        workflow.id,
        OptimizationKind.HYPERPARAMETER_SEARCH,
        objective="val_accuracy",
        direction=Direction.MAXIMIZE,
        space=SPACE,
        sampler="tpe",
        pruner=pruner,
        max_trials=trials,
        max_parallel=parallel,
    )
    began = time.perf_counter()
    try:
        optimization = await services.optimizations.start(actor, None, spec)
        async with services.bus.subscribe([optimization_topic(optimization.id)]) as events:
            async for event in events:
                if isinstance(event, OptimizationProgressed) and event.progress is Progress.FINISHED:
                    optimization = event.optimization
                    break
        wall = time.perf_counter() - began
    finally:
        driving.cancel()
        await asyncio.gather(driving, return_exceptions=True)
        await pool.stop(grace=3)
    assert optimization.status is OptimizationStatus.SUCCEEDED, optimization.error
    best = await services.optimizations.best(actor, optimization.id)
    assert best is not None and best.value is not None
    async with services.database.uow_factory()() as uow:
        results = await uow.optimizations.all_results(optimization.id)
    return {
        "wall_s": round(wall, 1),
        "best_accuracy": round(best.value, 4),
        "best_config": best.config,
        "pruned": sum(r.state is ResultState.PRUNED for r in results),
        "failed": sum(r.state is ResultState.FAILED for r in results),
    }


async def main(trials: int, executors: int) -> None:
    async with fresh_postgres() as url:
        with tempfile.TemporaryDirectory() as tmp:
            services = await bootstrap(
                Settings(data_dir=Path(tmp), database_url=url, executors=0), migrate=True
            )
            try:
                pruned = await search(services, Path(tmp), executors, executors, "median", trials)
                sequential = await search(services, Path(tmp), 1, 1, "none", trials)
            finally:
                await services.aclose()
    ratio = pruned["wall_s"] / sequential["wall_s"]
    gap = (sequential["best_accuracy"] - pruned["best_accuracy"]) * 100
    rows = [
        ("trials", str(trials)),
        (
            f"TPE + median, {executors} executors",
            f"{pruned['wall_s']} s, best {pruned['best_accuracy']:.4f}, {pruned['pruned']} pruned",
        ),
        ("TPE unpruned, 1 executor", f"{sequential['wall_s']} s, best {sequential['best_accuracy']:.4f}"),
        ("wall-time ratio (target <= 0.333)", f"{ratio:.3f}"),
        ("accuracy gap, points (target <= 1)", f"{gap:+.2f}"),
    ]
    report(
        "hpo",
        rows,
        {
            "trials": trials,
            "executors": executors,
            "parallel_pruned": pruned,
            "sequential": sequential,
            "wall_ratio": round(ratio, 3),
            "accuracy_gap_points": round(gap, 2),
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--executors", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.trials, args.executors))
