"""Distributed runs: the runner hands the attempt to torch's elastic launcher, which starts the ranks.

The runner process becomes the node's elastic agent (``elastic_launch``: c10d rendezvous, one process per
rank, the whole group ended when one rank fails; no restarts of its own, as a failed attempt is retried by
the control plane from its checkpoint). Each rank gets a RunContext with its ``rank``, ``local_rank`` and
``world_size`` and a process group already initialised (NCCL on GPUs, gloo on CPUs). Rank 0 writes to the
runner's message pipe (opened again through ``/proc``), so its metrics, checkpoints and result are the
run's; the other ranks' messages go nowhere. Control words (cancel, drain, prune) reach every rank through
a file the runner appends them to.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ptw.executors import protocol
from ptw.executors.artifacts import store_from_env
from ptw.executors.sdk import MessageChannel, RunContext

RENDEZVOUS_TIMEOUT = 600  # seconds the nodes of a run may take to all join
# The nodes of a multi-node run were placed together (executors/gang.py), so they join within seconds.
GANG_RENDEZVOUS_TIMEOUT = 120
CONTROL_POLL = 0.05


def is_distributed(job: Mapping[str, Any]) -> bool:
    return bool(job.get("distributed"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def relay_control(stream: IO[bytes], path: Path) -> None:
    """Append each control word the supervisor sends to ``path``; its end (the supervisor gone) too, as
    a cancel."""
    with path.open("ab", buffering=0) as out:
        for raw in iter(stream.readline, b""):
            out.write(raw.strip() + b"\n")
        out.write(protocol.CANCEL.encode() + b"\n")


def follow_control_file(ctx: RunContext, path: Path) -> None:
    with path.open("rb") as words:
        while True:
            line = words.readline()
            if not line:
                time.sleep(CONTROL_POLL)
                continue
            ctx.handle_control(line.decode(errors="replace").strip())


def rank_main(spec: dict[str, Any]) -> Any:
    """One rank of the run, in a process the elastic agent started (it set RANK, LOCAL_RANK, WORLD_SIZE,
    MASTER_ADDR and MASTER_PORT)."""
    import torch
    import torch.distributed as dist

    from ptw.executors.runner import die_with_supervisor, resolve_entrypoint

    die_with_supervisor()  # a rank dies with its agent, the runner, however that one ends
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    if spec["cuda"]:
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(spec["threads"])
    stream = open(spec["messages"] if rank == 0 else os.devnull, "wb")
    ctx = RunContext(
        run_id=spec["run_id"],
        attempt=spec["attempt"],
        params=spec["params"],
        device=device,
        artifacts=store_from_env(spec["artifacts_env"], Path(spec["artifacts_dir"])),
        channel=MessageChannel(stream),
        checkpoint_uri=spec["checkpoint_uri"],
        rank=rank,
        local_rank=local_rank,
        world_size=world_size,
    )
    control = threading.Thread(
        target=follow_control_file, args=(ctx, Path(spec["control"])), name="ptw-control", daemon=True
    )
    control.start()
    dist.init_process_group("nccl" if spec["cuda"] else "gloo")
    try:
        summary = resolve_entrypoint(spec["entrypoint"])(ctx)
    finally:
        ctx.close()
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
    return summary if rank == 0 else None


def launch(
    job: Mapping[str, Any],
    channel: MessageChannel,
    device: Any,
    artifacts_env: Mapping[str, str],
    artifacts_dir: Path,
    control: IO[bytes],
) -> Any:
    """Run the attempt's ranks on this node to their end; rank 0's return value, or raise as
    ``elastic_launch`` does (``ChildFailedError`` when a rank failed)."""
    import torch
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    processes, nodes = int(job.get("processes") or 1), int(job.get("nodes") or 1)
    workdir = Path(tempfile.mkdtemp(prefix="ptw-ranks-"))
    control_path = workdir / "control"
    control_path.touch()
    threading.Thread(
        target=relay_control, args=(control, control_path), name="ptw-relay", daemon=True
    ).start()
    cuda = device.type == "cuda"
    if nodes > 1 and not job.get("rendezvous"):
        raise RuntimeError(
            f"the run needs {nodes} nodes, which only `ptw worker` executors place together (production "
            "mode); the embedded executors run one node"
        )
    if nodes > 1:
        # A gang: node 0 hosts torch's c10d store at the endpoint it published and each node comes with
        # its rank (the static rendezvous), so that node 0's rank 0, the one that reports, is global rank 0.
        backend, endpoint = "static", str(job["rendezvous"])
        rdzv_configs: dict[str, Any] = {"rank": int(job["node_rank"]), "timeout": GANG_RENDEZVOUS_TIMEOUT}
    else:
        backend, endpoint = "c10d", f"127.0.0.1:{free_port()}"
        rdzv_configs = {"join_timeout": RENDEZVOUS_TIMEOUT, "last_call_timeout": 1}
    spec = {
        "run_id": job["run_id"],
        "attempt": int(job["attempt"]),
        "params": job.get("params") or {},
        "entrypoint": job["entrypoint"],
        "checkpoint_uri": job.get("checkpoint_uri"),
        "artifacts_env": dict(artifacts_env),
        "artifacts_dir": str(artifacts_dir),
        "messages": f"/proc/{os.getpid()}/fd/{channel.fileno()}",
        "control": str(control_path),
        "cuda": cuda,
        "threads": max(1, torch.get_num_threads() // processes),
    }
    config = LaunchConfig(
        min_nodes=nodes,
        max_nodes=nodes,
        nproc_per_node=processes,
        run_id=f"{job['run_id']}-{job['attempt']}",
        rdzv_backend=backend,
        rdzv_endpoint=endpoint,
        rdzv_configs=rdzv_configs,
        max_restarts=0,
        monitor_interval=0.1,
        # A forked rank starts with torch imported (milliseconds); CUDA, set up in this process while it
        # was warm, cannot cross a fork, so GPU ranks start afresh.
        start_method="spawn" if cuda else "fork",
        logs_specs=DefaultLogsSpecs(log_dir=str(workdir / "logs")),
    )
    try:
        results = elastic_launch(config, rank_main)(spec)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results.get(0)


# What a rank raises when a peer died under it (gloo's and NCCL's words): a consequence, not the cause.
PEER_LOST = ("closed by peer", "reset by peer", "remote worker", "nccl communicator was aborted")


def _error_data(failure: Any) -> dict[str, Any] | None:
    data = failure.error_file_data.get("message") if isinstance(failure.error_file_data, dict) else None
    return data if failure.exitcode >= 0 and isinstance(data, dict) else None


def failure_message(exc: BaseException) -> protocol.Failed | None:
    """The error message of the training code that failed a rank, or None when a rank died (killed, out
    of memory, a crash) or lost a peer that did: then the attempt is lost like a dead single-process
    runner, and retried from its checkpoint."""
    failures = getattr(exc, "failures", None)
    if not failures:
        return None
    errors = {rank: _error_data(failure) for rank, failure in failures.items()}
    if any(data is None for data in errors.values()):
        return None
    raised = {
        rank: data
        for rank, data in errors.items()
        if data is not None and not any(w in str(data.get("message", "")).lower() for w in PEER_LOST)
    }
    if not raised:
        return None
    rank, data = min(raised.items())
    kind, _, message = str(data.get("message", "")).partition(": ")
    return protocol.Failed(
        type=kind or "Error",
        message=f"{message} (rank {rank})",
        traceback=str((data.get("extraInfo") or {}).get("py_callstack", "")),
        phase=protocol.PHASE_RUN,
    )


def describe_failures(exc: BaseException) -> str:
    failures = getattr(exc, "failures", None) or {}
    parts = [f"rank {rank}: {failure.message}" for rank, failure in sorted(failures.items())]
    return "; ".join(parts) or f"{type(exc).__name__}: {exc}"
