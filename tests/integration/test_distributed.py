"""Distributed runs on one executor through torch's elastic launcher: real ranks (gloo on CPU) started by
a real runner, against real services on SQLite."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ptw.domain.runs import RunStatus
from ptw.domain.tenancy import Actor
from ptw.executors.pool import LocalExecutorPool
from ptw.executors.process_tree import read_proc
from ptw.executors.supervisor import SupervisionLimits
from ptw.infra.bootstrap import Services
from tests.fixtures.runs import finished, start_run, wait_for

TRAINS = "tests.workflows.ddp:trains"


@pytest.fixture
def limits() -> SupervisionLimits:
    return SupervisionLimits(cancel_grace=8.0, kill_grace=1.0)


async def points(services: Services, actor: Actor, run_id: str, key: str) -> list[tuple[int, float]]:
    series = await services.metrics.series(actor, run_id, key, max_points=10_000)
    return [(p.step, p.value) for p in series.points]


async def test_a_two_process_gloo_run_trains_with_ddp_and_succeeds(
    services: Services, actor: Actor, pool: LocalExecutorPool
) -> None:
    run = await start_run(services, actor, TRAINS, {"steps": 12}, processes_per_node=2)
    run = await finished(services, actor, run.id, within=180)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.summary is not None
    assert run.summary["rank"] == 0 and run.summary["is_main"] and run.summary["world_size"] == 2
    assert run.summary["weights_agree"]
    assert run.device is not None and run.device.endswith(" x2")
    assert [step for step, _ in await points(services, actor, run.id, "loss")] == list(range(12))


async def test_a_rank_killed_mid_run_ends_the_group_and_the_run_resumes_from_its_checkpoint(
    services: Services, actor: Actor, pool: LocalExecutorPool
) -> None:
    params = {"steps": 16, "every": 4, "kill_rank": 1, "kill_at": 10, "step_seconds": 0.05}
    run = await start_run(services, actor, TRAINS, params, processes_per_node=2)
    run = await finished(services, actor, run.id, within=240)
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.attempt == 2
    assert run.summary is not None and run.summary["resumed_from"] == 8  # after the checkpoint of step 7
    logged = await points(services, actor, run.id, "step_attempt")
    assert [step for step, _ in logged] == list(range(16))  # exactly one point per step
    assert {step for step, attempt in logged if attempt == 2.0} == set(range(8, 16))


async def test_cancel_reaches_every_rank_and_no_process_of_the_run_survives(
    services: Services, actor: Actor, pool: LocalExecutorPool, tmp_path: Path
) -> None:
    params = {"steps": 10, "hang": True, "pids": str(tmp_path)}
    run = await start_run(services, actor, TRAINS, params, processes_per_node=2)
    ranks = [tmp_path / "rank-0", tmp_path / "rank-1"]
    await wait_for(services, actor, run.id, lambda r: all(p.exists() for p in ranks), within=120)
    pids = [int(p.read_text()) for p in ranks]
    asked = time.monotonic()
    await services.runs.cancel_run(actor, run.id)
    run = await finished(services, actor, run.id, within=30)
    assert run.status is RunStatus.CANCELLED
    assert run.summary == {"cancelled_at": 0, "rank": 0}  # the ranks saw ctx.cancelled and returned
    assert time.monotonic() - asked < 20
    for _ in range(50):
        if all(read_proc(pid) is None or read_proc(pid).zombie for pid in pids):  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.1)
    assert all(read_proc(pid) is None or read_proc(pid).zombie for pid in pids)  # type: ignore[union-attr]


async def test_digits_ddp_on_two_processes_matches_one_process_within_its_tolerance(
    services: Services, actor: Actor, pool: LocalExecutorPool
) -> None:
    from ptw.executors.workflows.digits_ddp import TOLERANCE

    entrypoint = "ptw.executors.workflows.digits_ddp:train"
    params = {"epochs": 3, "batch_size": 64}
    two = await start_run(services, actor, entrypoint, params, processes_per_node=2)
    one = await start_run(services, actor, entrypoint, params, processes_per_node=1)
    two = await finished(services, actor, two.id, within=240)
    one = await finished(services, actor, one.id, within=240)
    assert two.status is RunStatus.SUCCEEDED and one.status is RunStatus.SUCCEEDED, (two.error, one.error)
    assert two.summary is not None and one.summary is not None
    assert two.summary["world_size"] == 2 and one.summary["world_size"] == 1
    assert two.summary["backend"] == one.summary["backend"] == "gloo"  # both through the launcher
    for key, tolerance in TOLERANCE.items():
        assert abs(two.summary[key] - one.summary[key]) <= tolerance, (key, two.summary, one.summary)
    assert two.summary["val_accuracy"] > 0.8  # it learned
