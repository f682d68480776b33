"""The fork server of one executor slot: torch imported once, then a runner forked from it per attempt.

``python -m ptw.executors.fork_server --control-fd N`` imports torch, says ``ready`` on the control socket
(a SOCK_SEQPACKET socket: one message a datagram), then forks a runner for each ``fork`` request, whose
stdin, stdout, stderr and message pipe arrive with the request (SCM_RIGHTS). A forked runner starts in a few
milliseconds with torch already imported, where a fresh interpreter spends seconds importing it: this is
what keeps dispatch warm for runs that arrive back to back. It replies ``forked {pid}`` and, when the runner
ends, ``exited {pid, status}`` (a negative status is the signal that killed it).

Its heap is moved onto transparent huge pages before the first fork (Linux 6.1+, ``MADV_COLLAPSE``;
elsewhere nothing happens): a fork copies one page-table entry per 2 MiB instead of 512, and the child's
exit frees as few. Measured with torch imported (148 MB of anonymous memory): fork + exit of a child that
does a little work took 24.5 ms of CPU (parent 7.8, child 16.7), 8.3 ms on huge pages (1.1 + 7.2).

The server is a child subreaper: the processes of a runner that was killed are re-parented here, and are
ended as soon as their runner's exit is seen. No torch work runs here before a fork: the children must start
from an interpreter without threads, and CUDA is initialised by each child on its own.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from ptw.executors.process_tree import become_subreaper, descendants, end_processes

MAX_REQUEST = 1 << 20
FORK, FORKED, EXITED, READY = "fork", "forked", "exited", "ready"
SWEEP_EVERY = 2.0  # seconds between looks for orphans, besides the look at each runner's exit


MADV_HUGEPAGE, MADV_COLLAPSE = 14, 25
HUGE_PAGE = 1 << 21


def collapse_heap_to_huge_pages() -> None:
    """Back this process's private anonymous memory (the C heap, Python's arenas) with 2 MiB pages, so
    forks copy and children free 512 times fewer page-table entries. Where the kernel cannot (before 6.1,
    THP disabled, not Linux) nothing changes.
    No library exposes madvise(MADV_COLLAPSE) (Python's mmap.madvise works only on its own mappings)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        maps = Path("/proc/self/maps").read_text().splitlines()
    except (OSError, AttributeError):
        return
    for line in maps:
        fields = line.split()
        name = fields[5] if len(fields) > 5 else ""
        if fields[1] != "rw-p" or name not in ("", "[heap]"):
            continue
        start, end = (int(address, 16) for address in fields[0].split("-"))
        start = (start + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
        end &= ~(HUGE_PAGE - 1)
        if end > start:
            libc.madvise(start, end - start, MADV_HUGEPAGE)
            libc.madvise(start, end - start, MADV_COLLAPSE)


def send(control: socket.socket, message: dict[str, Any]) -> None:
    control.send(json.dumps(message, separators=(",", ":")).encode())


class ForkServer:
    def __init__(self, control: socket.socket, artifacts_dir: Path, threads: int | None) -> None:
        self.control = control
        self.artifacts_dir = artifacts_dir
        self.threads = threads
        self.runners: set[int] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # only to wake select

    def serve(self) -> None:
        send(self.control, {"kind": READY, "pid": os.getpid()})
        while True:
            readable, _, _ = select.select([self.control, self._wake_r], [], [], SWEEP_EVERY)
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
            self._reap()
            if self.control in readable:
                try:
                    data, fds, _, _ = socket.recv_fds(self.control, MAX_REQUEST, 4)
                except OSError:
                    data, fds = b"", []
                if not data:
                    return  # the worker closed the socket or died
                self._fork(json.loads(data), fds)

    def _reap(self) -> None:
        ended = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.runners:
                self.runners.discard(pid)
                ended = True
                send(self.control, {"kind": EXITED, "pid": pid, "status": os.waitstatus_to_exitcode(status)})
        self._end_orphans(grace=0.2 if ended else 0.0)

    def _end_orphans(self, grace: float) -> None:
        """Children that are not runners are what a dead runner left behind: its run is over, so are they."""
        me = os.getpid()
        orphans = [p for p in descendants() if p.ppid == me and p.pid not in self.runners]
        doomed = list(orphans)
        for orphan in orphans:
            doomed += descendants(orphan.pid)
        if doomed:
            end_processes(doomed, grace)

    def _fork(self, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = self._become_runner(request, fds)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for fd in fds:
            os.close(fd)
        self.runners.add(pid)
        send(self.control, {"kind": FORKED, "pid": pid})

    def _become_runner(self, request: dict[str, Any], fds: list[int]) -> int:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.control.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        os.setsid()  # its own process group, which its supervisor signals as a whole
        stdin, stdout, stderr, message = fds
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        from ptw.executors import runner

        return runner.serve(message, self.artifacts_dir, self.threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptw.executors.fork_server")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--artifacts-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control_fd)
    control.setblocking(True)
    from ptw.executors.runner import die_with_supervisor

    die_with_supervisor()
    become_subreaper()
    # is_available() through NVML leaves CUDA uninitialised here, so forked children may use it.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    import torch  # noqa: F401  (what the children inherit: the reason this process exists)

    import ptw.executors.sdk  # noqa: F401

    # What the children inherit is kept out of their garbage collector: a full collection in a child would
    # otherwise touch every inherited object and copy the pages they sit on (~110 ms of CPU, measured).
    gc.collect()
    gc.freeze()
    collapse_heap_to_huge_pages()
    server = ForkServer(control, args.artifacts_dir, args.threads)
    try:
        server.serve()
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in list(server.runners):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        end_processes(descendants(), grace=0.5)
    return 0


if __name__ == "__main__":
    os._exit(main())
