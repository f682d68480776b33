"""EntrypointCheck: registration asks the executors that would run a workflow whether they can import it.

The in-process bus and registry of embedded mode, and the executors' real answerer (a child process of
this interpreter, as a runner would be)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence

import pytest

from ptw.domain.clock import utcnow
from ptw.domain.executors import ExecutorState
from ptw.domain.services.workflows import EntrypointCheck
from ptw.domain.workflows import Resources, Workflow
from ptw.executors.entrypoint_probe import answer_probes, import_problem
from ptw.infra.live.memory_bus import InMemoryEventBus
from ptw.infra.live.memory_registry import InMemoryExecutorRegistry


def workflow(entrypoint: str, gpus: int = 0) -> Workflow:
    return Workflow("w", "train", entrypoint, "p", resources=Resources(gpus=gpus))


async def executor(registry: InMemoryExecutorRegistry, slot: str, classes: Sequence[str]) -> None:
    await registry.announce(ExecutorState(slot, tuple(classes), busy=False, seen_at=utcnow()))


@pytest.fixture
async def pair() -> AsyncIterator[
    tuple[EntrypointCheck, InMemoryExecutorRegistry, dict[str, tuple[str, ...]]]
]:
    """A check, and one executor process answering for the slots in the dict it is given."""
    bus, registry = InMemoryEventBus(), InMemoryExecutorRegistry()
    slots: dict[str, tuple[str, ...]] = {}
    answering = asyncio.create_task(answer_probes(bus, lambda: slots, sys.executable, lambda: {}))
    await asyncio.sleep(0.05)  # subscribed
    yield EntrypointCheck(bus, registry, wait=10.0), registry, slots
    answering.cancel()


async def test_a_module_the_executor_has_passes_and_a_missing_one_is_named(pair) -> None:  # type: ignore[no-untyped-def]
    check, registry, slots = pair
    slots["w-0"] = ("cpu",)
    await executor(registry, "w-0", ["cpu"])
    assert await check.problem(workflow("json.decoder:JSONDecoder")) is None
    problem = await check.problem(workflow("no_such_pkg_xyz.train:main"))
    assert problem == "ModuleNotFoundError: No module named 'no_such_pkg_xyz'"


async def test_nothing_is_said_when_no_executor_serves_the_class(pair) -> None:  # type: ignore[no-untyped-def]
    check, registry, slots = pair
    slots["w-0"] = ("cpu",)
    await executor(registry, "w-0", ["cpu"])
    started = asyncio.get_running_loop().time()
    assert await check.problem(workflow("no_such_pkg_xyz.train:main", gpus=1)) is None  # no GPU executor
    assert asyncio.get_running_loop().time() - started < 1.0  # asked nobody, waited for nobody


async def test_a_silent_executor_leaves_the_question_open(pair) -> None:  # type: ignore[no-untyped-def]
    check, registry, _ = pair
    await executor(registry, "gone-0", ["cpu"])  # announced, but its process answers for no slot
    check.wait = 0.3
    assert await check.problem(workflow("no_such_pkg_xyz.train:main")) is None


async def test_a_parent_package_that_fails_to_import_is_the_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "broken_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("import no_such_dependency_xyz\n")
    problem = await import_problem("broken_pkg.train:main", sys.executable, {"PYTHONPATH": str(tmp_path)})
    assert problem == "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"
    assert await import_problem("broken_pkg:main", sys.executable, {"PYTHONPATH": str(tmp_path)}) is None
