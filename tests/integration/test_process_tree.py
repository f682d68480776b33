"""Every process a run starts ends with the run, and a declared memory limit is kept: real child runners
(forked from a real fork server) against real services on SQLite."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from ptw.domain.runs import RunStatus
from ptw.domain.tenancy import Actor
from ptw.executors.pool import LocalExecutorPool
from ptw.executors.process_tree import all_processes, children_of, descendants, end_processes, read_proc
from ptw.executors.supervisor import SupervisionLimits
from ptw.infra.bootstrap import Services
from tests.fixtures.runs import finished, start_run, wait_for

PROCESSES = "tests.workflows.processes"


@pytest.fixture
def limits() -> SupervisionLimits:
    return SupervisionLimits(cancel_grace=0.5, kill_grace=1.0)


def alive(pid: int) -> bool:
    proc = read_proc(pid)
    return proc is not None and not proc.zombie


def pids_in(folder: Path) -> list[int]:
    return [int((folder / name).read_text()) for name in ("session", "daemon")]


async def wait_gone(pids: list[int], within: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)


async def test_processes_in_a_new_session_end_when_the_run_returns(
    services: Services, actor: Actor, pool: LocalExecutorPool, tmp_path: Path
) -> None:
    run = await start_run(services, actor, f"{PROCESSES}:escapes", {"pids": str(tmp_path)})
    run = await finished(services, actor, run.id, within=60)
    assert run.status is RunStatus.SUCCEEDED, run.error
    pids = pids_in(tmp_path)
    assert await wait_gone(pids) == [], "a process of the run outlived it"


async def test_processes_in_a_new_session_end_when_the_run_is_cancelled(
    services: Services, actor: Actor, pool: LocalExecutorPool, tmp_path: Path
) -> None:
    run = await start_run(services, actor, f"{PROCESSES}:escapes", {"pids": str(tmp_path), "hang": True})
    await wait_for(services, actor, run.id, lambda r: (tmp_path / "daemon").exists(), within=60)
    pids = pids_in(tmp_path)
    assert all(alive(pid) for pid in pids)
    await services.runs.cancel_run(actor, run.id)
    run = await finished(services, actor, run.id, within=15)
    assert run.status is RunStatus.CANCELLED
    assert await wait_gone(pids) == [], "a process of the cancelled run outlived it"


async def test_processes_of_a_killed_runner_end_with_it(
    services: Services, actor: Actor, pool: LocalExecutorPool, tmp_path: Path
) -> None:
    run = await start_run(services, actor, f"{PROCESSES}:escapes", {"pids": str(tmp_path), "hang": True})
    await wait_for(services, actor, run.id, lambda r: (tmp_path / "daemon").exists(), within=60)
    pids = pids_in(tmp_path)
    runner = pool.slots[0].runner
    assert runner is not None
    os.kill(runner.pid, 9)  # no chance to clean up: the fork server, its subreaper, ends what it left
    await wait_for(services, actor, run.id, lambda r: r.attempt == 2, within=30)  # retried, as a crash is
    assert await wait_gone(pids) == [], "a process of the killed runner outlived it"
    await services.runs.cancel_run(actor, run.id)
    await finished(services, actor, run.id, within=15)


async def test_a_run_over_its_memory_limit_fails_with_the_reason(
    services: Services, actor: Actor, pool: LocalExecutorPool
) -> None:
    run = await start_run(services, actor, f"{PROCESSES}:grows", memory_mb=300)
    run = await finished(services, actor, run.id, within=60)
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "over its memory limit of 300 MB (memoryMb)" in run.error
    assert run.attempt == 1  # the limit is the workflow's: running it again would end the same way


async def test_a_run_within_its_memory_limit_is_left_alone(
    services: Services, actor: Actor, pool: LocalExecutorPool, tmp_path: Path
) -> None:
    run = await start_run(services, actor, f"{PROCESSES}:escapes", {"pids": str(tmp_path)}, memory_mb=2000)
    run = await finished(services, actor, run.id, within=60)
    assert run.status is RunStatus.SUCCEEDED, run.error


def test_the_walk_down_the_children_files_finds_what_a_scan_of_every_process_finds(tmp_path: Path) -> None:
    """A shell with two children, one of them in a session of its own with a child of its own."""
    script = "sleep 30 & setsid sh -c 'sleep 30 & wait' & wait"
    shell = subprocess.Popen(["sh", "-c", script])
    try:
        deadline = time.monotonic() + 5
        while len(descendants(shell.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        walked = sorted(p.pid for p in descendants(shell.pid))
        by_parent: dict[int, list[int]] = {}
        for proc in all_processes():
            by_parent.setdefault(proc.ppid, []).append(proc.pid)
        scanned, frontier = [], [shell.pid]
        while frontier:
            for child in by_parent.get(frontier.pop(), []):
                scanned.append(child)
                frontier.append(child)
        assert len(walked) >= 3 and walked == sorted(scanned)  # sleep, the new session's sh and its sleep
        assert children_of(shell.pid) is not None  # this kernel keeps the children files: the walk ran
    finally:
        end_processes(descendants(shell.pid), 0.5)
        shell.kill()
        shell.wait()


def huge_pages_collapsible() -> bool:
    """Linux 6.1+ (MADV_COLLAPSE) with transparent huge pages not disabled."""
    try:
        enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    return "[never]" not in enabled and (major, minor) >= (6, 1)


def anon_huge_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    return 0


async def test_the_fork_server_keeps_its_heap_on_huge_pages_and_still_forks_runners(tmp_path: Path) -> None:
    """Huge pages make each fork and each runner's exit cheaper (fork_server.py); where the kernel can
    collapse the heap the server's memory is mostly on them, and its runners work all the same."""
    from ptw.executors.fork_client import ForkServerClient
    from ptw.executors.warm_runner import WarmRunner

    forks = await ForkServerClient.start(tmp_path)
    try:
        await forks.ready()
        if huge_pages_collapsible():
            assert anon_huge_kb(forks.process.pid) > 50_000  # torch's heap: ~150 MB of anonymous memory
        runner = await WarmRunner.fork(forks)
        ready = await runner.ready()
        assert ready.device == "cpu"
        await runner.close_idle(1.0)
    finally:
        await forks.close(1.0)
