"""The autoscaler's decisions (``plan_scaling``) and its supervision of worker processes, on fakes."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest

from ptw.domain.clock import utcnow
from ptw.domain.executors import ExecutorState, ScalingPolicy, WorkerLoad, plan_scaling
from ptw.domain.runs import RunJob
from ptw.executors.autoscaler import QueueDepthAutoscaler
from ptw.executors.device import Gpu, GpuLeases
from ptw.infra.live.memory_registry import InMemoryExecutorRegistry
from tests.fixtures.memory import FakeJobQueue

POLICY = ScalingPolicy(minimum=0, maximum=2, idle_timeout=5)


def idle(ident: str, since: float) -> WorkerLoad:
    return WorkerLoad(ident, 0, since)


def test_from_zero_it_wants_a_worker_per_waiting_run_up_to_max() -> None:
    assert plan_scaling(POLICY, {"cpu": 0}, ["cpu"], [], 0).start == 0
    assert plan_scaling(POLICY, {"cpu": 1}, ["cpu"], [], 0).start == 1
    plan = plan_scaling(POLICY, {"cpu": 4, "gpu": 3}, ["cpu"], [], 0)
    assert (plan.desired, plan.waiting, plan.start) == (2, 4, 2)  # gpu runs are not this machine's


def test_slots_divide_the_workers_needed() -> None:
    policy = ScalingPolicy(minimum=0, maximum=8, idle_timeout=5, slots=4)
    assert plan_scaling(policy, {"cpu": 5}, ["cpu"], [], 0).desired == 2


def test_it_keeps_the_minimum_and_starts_it_at_once() -> None:
    policy = ScalingPolicy(minimum=1, maximum=3, idle_timeout=5)
    assert plan_scaling(policy, {}, ["cpu"], [], 0).start == 1


def test_only_workers_idle_for_the_whole_timeout_are_drained_longest_idle_first() -> None:
    workers = [idle("a", 10), idle("b", 4), WorkerLoad("c", 1, None), idle("d", 7)]
    plan = plan_scaling(POLICY, {}, ["cpu"], workers, now=12)
    assert plan.desired == 1 and plan.drain == ("b", "d")  # "a": idle 2 s only; "c" runs
    assert plan_scaling(POLICY, {}, ["cpu"], workers, now=9.5).drain == ("b",)


def test_nothing_is_drained_while_runs_wait_or_were_just_taken() -> None:
    workers = [idle("a", 0), idle("b", 0)]
    one = ScalingPolicy(minimum=0, maximum=1, idle_timeout=5)
    assert plan_scaling(one, {"cpu": 1}, ["cpu"], workers, now=100).drain == ()
    assert plan_scaling(one, {}, ["cpu"], workers, now=100, taken=1).drain == ()
    assert plan_scaling(one, {}, ["cpu"], workers, now=100).drain == ("a", "b")


@pytest.mark.parametrize(("low", "high", "timeout"), [(3, 2, 1), (0, 0, 1), (-1, 2, 1), (0, 2, -1)])
def test_a_policy_out_of_bounds_is_refused(low: int, high: int, timeout: float) -> None:
    with pytest.raises(ValueError):
        ScalingPolicy(low, high, timeout)


class FakeProcess:
    pids = itertools.count(100)

    def __init__(self, env: Mapping[str, str]) -> None:
        self.pid = next(self.pids)
        self.env = dict(env)
        self.returncode: int | None = None
        self.signals: list[str] = []

    def terminate(self) -> None:
        self.signals.append("TERM")
        self.returncode = 0  # drains at once

    def kill(self) -> None:
        self.signals.append("KILL")
        self.returncode = -9

    async def wait(self) -> int:
        assert self.returncode is not None
        return self.returncode


class Rig:
    """An autoscaler on fakes, with a clock the test moves."""

    def __init__(self, policy: ScalingPolicy = POLICY, gpus: GpuLeases | None = None) -> None:
        self.queue, self.registry, self.now = FakeJobQueue(), InMemoryExecutorRegistry(), 0.0
        self.started: list[FakeProcess] = []
        self.scaler = QueueDepthAutoscaler(
            self.queue,
            self.registry,
            self.launch,
            policy,
            autoscaler_id="scaler",
            resource_classes=["cpu"],
            executor_prefix=lambda pid: f"w-{pid}-",
            gpus=gpus,
            clock=lambda: self.now,
        )

    async def launch(self, env: Mapping[str, str]) -> FakeProcess:
        process = FakeProcess(env)
        self.started.append(process)
        return process

    async def enqueue(self, count: int) -> None:
        for i in range(count):
            run_id = f"run-{len(self.queue.jobs)}-{i}"
            await self.queue.enqueue(RunJob(run_id, "project", 1, "pkg:train", {}, "cpu", None))

    async def announce(self, process: FakeProcess, busy: bool) -> None:
        await self.registry.announce(ExecutorState(f"w-{process.pid}-0", ("cpu",), busy, utcnow()))


async def test_workers_follow_the_queue_up_to_max_and_drain_after_the_idle_timeout() -> None:
    rig = Rig()
    await rig.scaler.tick()
    assert rig.started == []
    await rig.enqueue(4)
    await rig.scaler.tick()
    assert len(rig.started) == 2
    await rig.scaler.tick()
    assert len(rig.started) == 2  # warming workers count: no third one
    a, b = rig.started
    rig.queue.jobs.clear()  # both took a run and say so
    await rig.announce(a, busy=True)
    await rig.announce(b, busy=True)
    rig.now = 50
    await rig.scaler.tick()
    assert a.signals == b.signals == []
    await rig.announce(a, busy=False)
    await rig.announce(b, busy=False)
    rig.now = 51
    await rig.scaler.tick()  # idle from now on
    rig.now = 55.5
    await rig.scaler.tick()
    assert a.signals == b.signals == []
    rig.now = 56
    await rig.scaler.tick()
    assert a.signals == b.signals == ["TERM"]  # the graceful drain, never a kill
    state = (await rig.registry.autoscalers())[0]
    assert (state.workers, state.draining, state.desired) == (0, 2, 0)
    await rig.scaler.tick()
    assert rig.scaler.workers == [] and len(rig.started) == 2


async def test_a_run_taken_by_a_warming_slot_keeps_its_worker() -> None:
    rig = Rig(ScalingPolicy(minimum=0, maximum=1, idle_timeout=1))
    await rig.enqueue(1)
    await rig.scaler.tick()
    (worker,) = rig.started
    await rig.announce(worker, busy=False)
    rig.queue.jobs.clear()
    rig.queue.taken = {"cpu": 1}  # taken, its slot still starts the run's child
    rig.now = 10
    await rig.scaler.tick()
    await rig.scaler.tick()
    assert worker.signals == []
    rig.queue.taken = {}
    rig.now = 12
    await rig.scaler.tick()
    assert worker.signals == ["TERM"]


async def test_a_worker_dying_before_it_warms_delays_the_next_start() -> None:
    rig = Rig()
    await rig.enqueue(1)
    await rig.scaler.tick()
    rig.started[0].returncode = 1
    rig.now = 0.1
    await rig.scaler.tick()
    assert len(rig.started) == 1  # held back for a second
    rig.now = 1.2
    await rig.scaler.tick()
    assert len(rig.started) == 2


async def test_each_worker_gets_its_own_gpu_and_a_drained_one_frees_it() -> None:
    gpus = GpuLeases([Gpu("GPU-a", "0", "H100", 81559), Gpu("GPU-b", "1", "H100", 81559)])
    rig = Rig(gpus=gpus)
    await rig.enqueue(2)
    await rig.scaler.tick()
    assert [p.env for p in rig.started] == [
        {"CUDA_VISIBLE_DEVICES": "GPU-a"},
        {"CUDA_VISIBLE_DEVICES": "GPU-b"},
    ]
    assert (await rig.registry.autoscalers())[0].gpus == 2
    await rig.announce(rig.started[0], busy=False)
    await rig.scaler.tick()
    rig.started[0].returncode = 0  # it warmed up, then exited: its GPU is free again
    await rig.scaler.tick()
    assert rig.started[2].env == {"CUDA_VISIBLE_DEVICES": "GPU-a"}


async def test_stopping_drains_every_worker_and_retires_the_decision() -> None:
    rig = Rig(ScalingPolicy(minimum=1, maximum=1, idle_timeout=5))
    await rig.scaler.tick()
    (worker,) = rig.started
    assert len(await rig.registry.autoscalers()) == 1
    await rig.scaler.shutdown()
    assert worker.signals == ["TERM"]
    assert await rig.registry.autoscalers() == [] and rig.scaler.workers == []
