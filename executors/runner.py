"""The child process that runs one attempt of a run: started warm, before its job arrives.

``python -m ptw.executors.runner --message-fd N`` imports torch and picks its device, says ``ready``, then
blocks on stdin for one job (a JSON line). It imports the entrypoint, says ``started``, calls the training
function with a RunContext and sends its ``result`` (or ``error``), then exits: one process per attempt, so a
crash, a leak or GPU memory never outlives the run. Later stdin lines are control words (``cancel``,
``prune``). Messages go on the inherited pipe ``N``; stdout and stderr are the user's, captured as run logs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from ptw.executors import current, protocol, ranks
from ptw.executors.artifacts import ENDPOINT_ENV, KEY_ENV, URL_ENV, ArtifactStore, store_from_env
from ptw.executors.device import device_name, pick_device
from ptw.executors.process_tree import become_subreaper, end_descendants
from ptw.executors.sdk import MessageChannel, RunContext, follow_control


class Terminated(BaseException):
    """SIGTERM arrived: unwind the training code (its ``finally`` blocks run, buffered metrics are sent)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Once is enough: a second SIGTERM must not interrupt the flush of what the run logged.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("the run was stopped (SIGTERM)")


def die_with_supervisor() -> None:
    """Ask Linux to kill this process when its supervisor dies (a worker killed with SIGKILL): an attempt
    nobody supervises must not go on training while the run is retried elsewhere. A no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the supervisor died before the request took effect
        os._exit(1)


def prepare_torch(threads: int | None) -> Any:
    """Import torch and pick the device before the job arrives: this is what makes the runner warm."""
    import torch

    if threads and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(threads)
    device = pick_device()
    torch.zeros(1, device=device)  # creates the CUDA context now rather than inside the run
    return device


def resolve_entrypoint(entrypoint: str) -> Callable[[RunContext], Any]:
    module_name, _, function_name = entrypoint.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name)
    if not callable(function):
        raise TypeError(f"{entrypoint} is a {type(function).__name__}, not a function")
    return function  # type: ignore[no-any-return]


def _error(exc: BaseException, phase: str) -> protocol.Failed:
    return protocol.Failed(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)), phase)


def run_job(job: dict[str, Any], channel: MessageChannel, device: Any, artifacts: ArtifactStore) -> int:
    """Run one job to its end; every way out sends a result or an error. Returns the exit status."""
    ctx = RunContext(
        run_id=job["run_id"],
        attempt=int(job["attempt"]),
        params=job.get("params") or {},
        device=device,
        artifacts=artifacts,
        channel=channel,
        checkpoint_uri=job.get("checkpoint_uri"),
    )
    current.set_context(ctx)
    threading.Thread(
        target=follow_control, args=(ctx, sys.stdin.buffer), name="ptw-control", daemon=True
    ).start()
    try:
        function = resolve_entrypoint(job["entrypoint"])
    except BaseException as exc:
        ctx.close()
        channel.send(_error(exc, protocol.PHASE_IMPORT))
        return 1
    channel.send(protocol.Started(device_name(device)))
    try:
        summary = function(ctx)
    except BaseException as exc:  # Terminated, SystemExit and KeyboardInterrupt included: all end the run
        ctx.close()
        channel.send(_error(exc, protocol.PHASE_RUN))
        return 1
    ctx.close()
    if summary is None:
        summary = {}
    elif not isinstance(summary, dict):
        summary = {"result": summary}
    summary = {**current.tracked_summary(), **summary}  # what ptw.init()'s run.summary was given
    channel.send(protocol.Result(protocol.json_safe(summary)))
    return 0


def run_distributed(
    job: dict[str, Any],
    channel: MessageChannel,
    device: Any,
    artifacts_env: dict[str, str],
    artifacts_dir: Path,
) -> int:
    """Run one job's ranks through torch's elastic launcher; rank 0's return value is the result. A rank
    that raised fails the run with its error; a rank that died ends the group and the attempt is lost
    (exit without a result), to be retried from its checkpoint."""
    try:
        resolve_entrypoint(job["entrypoint"])  # refused here, before any rank starts, if it cannot import
    except BaseException as exc:
        channel.send(_error(exc, protocol.PHASE_IMPORT))
        return 1
    processes = int(job.get("processes") or 1) * int(job.get("nodes") or 1)
    channel.send(protocol.Started(f"{device_name(device)} x{processes}"))
    try:
        # Not sys.stdin: a forked rank closes it, which would wait forever for the lock of a buffered
        # reader that the relay thread holds while it waits for a line. An unbuffered one has no lock.
        control = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
        summary = ranks.launch(job, channel, device, artifacts_env, artifacts_dir, control)
    except BaseException as exc:
        error = ranks.failure_message(exc)
        if error is not None:
            channel.send(error)
        elif not getattr(exc, "failures", None):  # stopped (SIGTERM), or the launcher itself failed
            channel.send(_error(exc, protocol.PHASE_RUN))
        else:
            line = f"the run's group ended: {ranks.describe_failures(exc)}"
            channel.send(protocol.LogLine(line))
        return 1
    if summary is None:
        summary = {}
    elif not isinstance(summary, dict):
        summary = {"result": summary}
    channel.send(protocol.Result(protocol.json_safe(summary)))
    return 0


def serve(message_fd: int, artifacts_dir: Path, threads: int | None) -> int:
    """Be the runner of one attempt: ready, then the job, then every process it started ended."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    die_with_supervisor()
    # What the training code starts in a session of its own is re-parented here, to be ended with the run.
    become_subreaper()
    # The user's prints should reach the run's log as they happen, not when a block buffer fills.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    channel = MessageChannel(os.fdopen(message_fd, "wb"))
    # PTW_ARTIFACTS_URL, PTW_S3_ENDPOINT_URL, PTW_CHECKPOINT_KEY; a bad one stops the runner before it is
    # ready, with the reason in its stderr. The key then leaves the environment: what the training code
    # starts (data loader workers, shells) has no use for it.
    artifacts = store_from_env(os.environ, artifacts_dir)
    # A distributed run's ranks build their own store from the same settings.
    artifacts_env = {k: os.environ[k] for k in (URL_ENV, ENDPOINT_ENV, KEY_ENV) if k in os.environ}
    os.environ.pop(KEY_ENV, None)
    try:
        device = prepare_torch(threads)
        channel.send(protocol.Ready(os.getpid(), str(device), device_name(device)))
        line = sys.stdin.buffer.readline()
        if not line.strip():
            return 0  # the pool is stopping before a job came
        job = json.loads(line)
        if ranks.is_distributed(job):
            return run_distributed(job, channel, device, artifacts_env, artifacts_dir)
        return run_job(job, channel, device, artifacts)
    except Terminated:
        return 143
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        end_descendants(grace=1.0)  # no process of the run outlives it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptw.executors.runner")
    parser.add_argument("--message-fd", type=int, required=True)
    parser.add_argument("--artifacts-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    return serve(args.message_fd, args.artifacts_dir, args.threads)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: threads the training code left behind must not keep the process alive.
    os._exit(code)
