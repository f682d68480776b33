"""Answers the control plane's question at a workflow's registration: can this executor import its module?

The answer comes from a short child process with the runner's own interpreter, environment and working
directory, so it sees exactly what a run's process would. ``importlib.util.find_spec`` finds the module
without running it (its parent packages are imported, as any import of it would); the training module
itself and torch stay out, so an answer takes tens of milliseconds, not the seconds of a real import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence

from ptw.domain.events import EXECUTORS_TOPIC, EntrypointAnswered, EntrypointProbed, probe_topic
from ptw.domain.ports import EventBus

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 30.0  # a parent package that imports heavy libraries (torch) takes seconds
_FIND = (
    "import importlib.util, sys\n"
    "try:\n"
    "    found = importlib.util.find_spec(sys.argv[1])\n"
    "except Exception as exc:\n"
    "    sys.exit(f'{type(exc).__name__}: {exc}')\n"
    "if found is None:\n"
    "    sys.exit(f'ModuleNotFoundError: No module named {sys.argv[1]!r}')\n"
)


async def import_problem(entrypoint: str, python: str, env: Mapping[str, str]) -> str | None:
    """Why ``python`` with ``env`` cannot import the entrypoint's module; None when it can."""
    module = entrypoint.partition(":")[0]
    process = await asyncio.create_subprocess_exec(
        python,
        "-c",
        _FIND,
        module,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return f"importing {module!r} took over {PROBE_TIMEOUT:.0f} s"
    if process.returncode == 0:
        return None
    lines = err.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"the probe exited with {process.returncode}"


async def answer_probes(
    bus: EventBus,
    executors: Callable[[], Mapping[str, Sequence[str]]],
    python: str,
    env: Callable[[], Mapping[str, str]],
) -> None:
    """Answer every probe for a resource class one of ``executors()`` (slot id → classes it serves)
    serves, for those slots, until cancelled."""
    async with bus.subscribe([EXECUTORS_TOPIC]) as events:
        async for event in events:
            if not isinstance(event, EntrypointProbed):
                continue
            serving = tuple(i for i, classes in executors().items() if event.resource_class in classes)
            if not serving:
                continue
            try:
                problem = await import_problem(event.entrypoint, python, env())
                await bus.publish(
                    [probe_topic(event.probe_id)], EntrypointAnswered(event.probe_id, serving, problem)
                )
            except Exception:
                log.exception("could not answer the probe of %s", event.entrypoint)
