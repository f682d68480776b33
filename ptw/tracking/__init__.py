"""The tracking client: two lines in any training script, and it shows up live beside every other run.

    import ptw
    with ptw.init(project="research", name="resnet-sweep-3", params={"lr": 3e-4}, tags=["baseline"]) as run:
        for step in range(steps):
            run.log({"loss": loss}, step=step)
        run.summary["best_val"] = best

Leaving the ``with`` ends the run SUCCEEDED; an exception ends it FAILED with the traceback's tail; Ctrl-C
ends it CANCELLED. Without ``with``, call ``run.finish(status)`` or ``ptw.finish()`` (a run still open
when the interpreter exits is finished then: FAILED if an exception ended the script).
"""

from __future__ import annotations

import atexit
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from ptw.tracking.connection import NoKey, connect
from ptw.tracking.in_executor import ExecutorRun
from ptw.tracking.run import TrackedRun, say
from ptw.tracking.server import Refused, Server

__all__ = ["ExecutorRun", "NoKey", "Refused", "TrackedRun", "active", "finish", "init"]

_active: TrackedRun | ExecutorRun | None = None
_exit_hooks_installed = False
_uncaught: BaseException | None = None


def init(
    project: str | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
    *,
    url: str | None = None,
    api_key: str | None = None,
    interrupt_on_cancel: bool = True,
    finish_timeout: float = 30.0,
) -> TrackedRun | ExecutorRun:
    """Start tracking a run. Inside one of our executors, the run being executed is answered instead.

    ``project``: a project name of the key (default: the key's only project). ``url`` default: PTW_URL,
    else http://127.0.0.1:8000. ``api_key`` default: PTW_API_KEY, else the local key of embedded
    ``ptw serve``. When the server does not answer, the run is created as soon as it does, and what was
    logged meanwhile is sent then (kept in memory, then on disk). A cancel from the UI or CLI interrupts
    the main thread like Ctrl-C (``interrupt_on_cancel=False``: only ``run.cancelled`` turns True).
    """
    global _active
    from ptw.executors import current

    ctx = current.context()
    if ctx is not None:
        _active = ExecutorRun(ctx, params)
        return _active
    if _active is not None:
        say("ptw.init() while a run was active: finishing that one first (SUCCEEDED)")
        _active.finish("SUCCEEDED")
    server = Server(connect(url, api_key))
    try:
        run = TrackedRun(
            server,
            project=project,
            name=name,
            params=params,
            tags=tags,
            interrupt_on_cancel=interrupt_on_cancel,
            finish_timeout=finish_timeout,
        )
    except BaseException:
        server.close()
        raise
    _active = run
    _install_exit_hooks()
    return run


def active() -> TrackedRun | ExecutorRun | None:
    return _active


def finish(status: str = "SUCCEEDED", error: str | None = None) -> None:
    """Finish the active run (see ``TrackedRun.finish``); nothing when none is active."""
    global _active
    run, _active = _active, None
    if run is not None:
        run.finish(status, error)


def _install_exit_hooks() -> None:
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    _exit_hooks_installed = True
    previous = sys.excepthook

    def remember(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        global _uncaught
        _uncaught = error
        previous(kind, error, tb)

    sys.excepthook = remember
    atexit.register(_finish_at_exit)


def _finish_at_exit() -> None:
    run = _active
    if run is None or isinstance(run, ExecutorRun):
        return
    if _uncaught is None:
        finish("SUCCEEDED")
    elif isinstance(_uncaught, KeyboardInterrupt):
        finish("CANCELLED", "interrupted (Ctrl-C)")
    else:
        text = "".join(traceback.format_exception(_uncaught))
        finish("FAILED", text[-8_000:])
