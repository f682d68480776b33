"""A run's processes as one tree: adopt what escapes into its own session, end all of it, weigh it.

Training code may start processes that leave the runner's process group (``setsid``, daemons that fork
twice); a process group alone cannot find those. The runner and the fork server make themselves child
subreapers, so such orphans are re-parented to them rather than to init, and stay in the tree walked here.
Read from ``/proc`` directly (Linux): psutil is not among the executor's dependencies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    """A process as seen once: its start time tells it apart from a later process given the same pid."""

    pid: int
    ppid: int
    started: int
    zombie: bool


def become_subreaper() -> bool:
    """Orphaned descendants of this process become its children (Linux); False where that is unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    return False


def read_proc(pid: int) -> Proc | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields that follow the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return Proc(pid, int(fields[1]), int(fields[19]), fields[0] in ("Z", "X"))


def all_processes() -> list[Proc]:
    found = []
    for entry in os.scandir(PROC):
        if entry.name.isdigit() and (proc := read_proc(int(entry.name))) is not None:
            found.append(proc)
    return found


def children_of(pid: int) -> list[int] | None:
    """The pids of ``pid``'s children, from each of its threads' ``/proc/PID/task/TID/children`` (none
    once it is gone); None where the kernel does not keep that file (CONFIG_PROC_CHILDREN)."""
    task = PROC / str(pid) / "task"
    try:
        threads = os.listdir(task)
    except OSError:
        return []
    found: list[int] = []
    for tid in threads:
        try:
            found += [int(child) for child in (task / tid / "children").read_text().split()]
        except FileNotFoundError:
            if (task / tid).exists():
                return None  # the thread is there, its children file is not: no such file on this kernel
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return found


def descendants(pid: int | None = None) -> list[Proc]:
    """Every live descendant of ``pid`` (this process by default), however deep; zombies left out.

    Walked down from ``pid`` through the children files: a run's few processes cost a few reads, where
    scanning every process of the machine cost ~10 ms at each run's end (and at each memory check).
    Where the kernel has no children files, every process is read once."""
    root = os.getpid() if pid is None else pid
    walked = _walk_children(root)
    if walked is not None:
        return walked
    children: dict[int, list[Proc]] = {}
    for proc in all_processes():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    frontier = [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child.pid != root and child not in found:
                found.append(child)
                frontier.append(child.pid)
    return [proc for proc in found if not proc.zombie]


def _walk_children(root: int) -> list[Proc] | None:
    found: list[Proc] = []
    seen = {root}
    frontier = [root]
    while frontier:
        pids = children_of(frontier.pop())
        if pids is None:
            return None
        for child in pids:
            if child in seen:
                continue
            seen.add(child)
            proc = read_proc(child)
            if proc is not None:
                found.append(proc)
                frontier.append(child)
    return [proc for proc in found if not proc.zombie]


def _alive(proc: Proc) -> bool:
    now = read_proc(proc.pid)
    return now is not None and now.started == proc.started and not now.zombie


def _signal(proc: Proc, signum: int) -> None:
    if _alive(proc):  # never a process that took the pid of one that ended
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signum)


def end_processes(processes: list[Proc], grace: float = 1.0) -> None:
    """SIGTERM, then SIGKILL what still runs after ``grace`` seconds."""
    for proc in processes:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.02)
    for proc in processes:
        _signal(proc, signal.SIGKILL)


def end_descendants(pid: int | None = None, grace: float = 1.0, rounds: int = 3) -> None:
    """End every descendant of ``pid``; again while ending them let new ones appear (a forking parent)."""
    for _ in range(rounds):
        found = descendants(pid)
        if not found:
            return
        end_processes(found, grace)


def memory_bytes(pid: int) -> int:
    """Proportional resident memory (PSS) of one process: pages shared with the fork server are split
    among the processes sharing them, so a tree's sum is what the run really holds."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_memory(pid: int) -> int:
    """Memory of ``pid`` and all its descendants, in bytes (0 once it is gone)."""
    if read_proc(pid) is None:
        return 0
    return memory_bytes(pid) + sum(memory_bytes(p.pid) for p in descendants(pid))
