"""Training functions that start processes meant to outlive them, or grow without bound.

Imported by real child runners (``tests/integration/test_process_tree.py``): a run's every process must end
with the run, and a run over its memory limit must fail with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# A daemon the classic way: fork, setsid, fork again, so that it is nobody's child and in no group of ours.
DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(sys.argv[1], "w").write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
"""


def escapes(ctx: Any) -> dict[str, Any]:
    """Start a process in a new session and a double-forked daemon, write their pids to ``pids``, then
    return (or, with ``hang``, wait to be cancelled while ignoring it)."""
    folder = Path(ctx.params["pids"])
    session = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    (folder / "session").write_text(str(session.pid))
    subprocess.run([sys.executable, "-c", DAEMON, str(folder / "daemon.tmp")], check=True)
    deadline = time.monotonic() + 10
    while not (folder / "daemon.tmp").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.replace(folder / "daemon.tmp", folder / "daemon")
    while ctx.params.get("hang"):
        time.sleep(0.1)
    return {"started": 2}


def grows(ctx: Any) -> dict[str, Any]:
    """Hold 20 MB more every 50 ms (touched, so resident) until stopped; a child process grows too."""
    child = subprocess.Popen(
        [sys.executable, "-c", "b = bytearray(64 * 2**20); import time; time.sleep(300)"],
        start_new_session=True,
    )
    held = []
    for _ in range(400):
        held.append(bytearray(os.urandom(1)) * (20 * 2**20))
        time.sleep(0.05)
    child.kill()
    return {"held_mb": 20 * len(held)}
