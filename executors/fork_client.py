"""The worker's handle on a slot's fork server: start it, have it fork runners, learn how each one ended.

A forked runner is not the worker's child, so asyncio cannot wait for it: ``ForkedProcess`` offers what
the supervisor needs of a process (pid, pipes, ``wait``, ``returncode``) and learns the exit status from the
fork server's ``exited`` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ptw.executors import fork_server

log = logging.getLogger(__name__)


class ForkFailed(Exception):
    """The fork server died, never became ready, or could not fork."""


class ForkedProcess:
    """A runner forked by the fork server, shaped like ``asyncio.subprocess.Process`` for its users."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._exited = asyncio.Event()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def ended(self, status: int) -> None:
        if self.returncode is None:
            self.returncode = status
            self._exited.set()


class ForkServerClient:
    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket) -> None:
        self.process = process
        self.control = control
        self.runners: dict[int, ForkedProcess] = {}
        self._forking: deque[asyncio.Future[ForkedProcess]] = deque()
        self._lock = asyncio.Lock()
        self._reading: asyncio.Task[None] | None = None
        self._logging: asyncio.Task[None] | None = None
        self.launch: tuple[str, str, int | None, dict[str, str]] | None = None  # see started_with

    @classmethod
    async def start(
        cls,
        artifacts_dir: Path,
        *,
        python: str = sys.executable,
        threads: int | None = None,
        env: Mapping[str, str] | None = None,
        within: float = 120.0,
    ) -> ForkServerClient:
        client = await cls.spawn(artifacts_dir, python=python, threads=threads, env=env)
        await client.ready(within)
        return client

    @classmethod
    async def spawn(
        cls,
        artifacts_dir: Path,
        *,
        python: str = sys.executable,
        threads: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ForkServerClient:
        """The server's process started, importing torch; ``ready`` waits for it to be done."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [python, "-m", "ptw.executors.fork_server", "--control-fd", str(theirs.fileno())]
        command += ["--artifacts-dir", str(artifacts_dir)]
        if threads:
            command += ["--threads", str(threads)]
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                env=dict(env or os.environ),
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        client = cls(process, ours)
        client.launch = (python, str(artifacts_dir), threads, dict(env or os.environ))
        client._logging = asyncio.create_task(client._log_stderr())
        return client

    def started_with(
        self, artifacts_dir: Path, python: str, threads: int | None, env: Mapping[str, str]
    ) -> bool:
        """Whether this server was started as ``start`` would start it with these arguments."""
        return self.launch == (python, str(artifacts_dir), threads, dict(env))

    async def ready(self, within: float = 120.0) -> ForkServerClient:
        """Once the server said it is ready to fork (torch imported); ForkFailed if it never does."""
        if self._reading is not None:
            return self
        try:
            ready = await asyncio.wait_for(self._receive(), within)
        except (TimeoutError, OSError) as exc:
            await self.close()
            raise ForkFailed(f"the fork server did not become ready within {within:.0f} s: {exc!r}") from None
        if ready is None or ready.get("kind") != fork_server.READY:
            await self.close()
            raise ForkFailed(f"the fork server exited before it was ready (exit {self.process.returncode})")
        self._reading = asyncio.create_task(self._read_replies())
        return self

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self._reading is not None and not self._reading.done()

    async def fork(self, env: Mapping[str, str]) -> tuple[ForkedProcess, asyncio.StreamReader]:
        """A new runner with ``env`` as its whole environment: its process and its message stream."""
        loop = asyncio.get_running_loop()
        pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, messages
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
        request = json.dumps({"kind": fork_server.FORK, "env": dict(env)}).encode()
        waiting: asyncio.Future[ForkedProcess] = loop.create_future()
        try:
            async with self._lock:  # replies come in the order of the requests
                if not self.alive:
                    raise ForkFailed("the fork server is gone")
                self._forking.append(waiting)
                await self._send(request, theirs)
        except BaseException:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            raise
        for fd in theirs:
            os.close(fd)
        process = await waiting
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(pipes[0][1], "wb", buffering=0)
        )
        process.stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        process.stdout = await _reader(pipes[1][0])
        process.stderr = await _reader(pipes[2][0])
        from ptw.executors.warm_runner import MESSAGE_LIMIT

        return process, await _reader(pipes[3][0], MESSAGE_LIMIT)

    async def _send(self, data: bytes, fds: list[int]) -> None:
        # A datagram of a few KB into an empty socket buffer does not block; if it ever would, wait a bit.
        while True:
            try:
                socket.send_fds(self.control, [data], fds)
                return
            except BlockingIOError:
                await asyncio.sleep(0.001)

    async def _receive(self) -> dict[str, Any] | None:
        data = await asyncio.get_running_loop().sock_recv(self.control, 65536)
        return json.loads(data) if data else None

    async def _read_replies(self) -> None:
        try:
            while (message := await self._receive()) is not None:
                if message["kind"] == fork_server.FORKED:
                    process = self.runners[int(message["pid"])] = ForkedProcess(int(message["pid"]))
                    waiting = self._forking.popleft()
                    if not waiting.done():
                        waiting.set_result(process)
                elif message["kind"] == fork_server.EXITED:
                    process = self.runners.pop(int(message["pid"]), None)
                    if process is not None:
                        process.ended(int(message["status"]))
        except (OSError, ValueError, KeyError, IndexError):
            log.exception("the fork server's replies cannot be read")
        finally:
            self._gone()

    def _gone(self) -> None:
        """Its runners die with it (their parent-death signal): say so to whoever waits on them."""
        for process in self.runners.values():
            process.ended(-signal.SIGKILL)
        self.runners.clear()
        while self._forking:
            waiting = self._forking.popleft()
            if not waiting.done():
                waiting.set_exception(ForkFailed("the fork server is gone"))

    async def _log_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while line := await stream.readline():
            log.warning("fork server %s: %s", self.process.pid, line.decode(errors="replace").rstrip())

    async def close(self, grace: float = 2.0) -> None:
        """Closing the socket tells the server to end its runners and exit; it is killed if it does not."""
        if self.control.fileno() != -1:
            self.control.close()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await asyncio.wait_for(self.process.wait(), grace)
        for task in (self._reading, self._logging):
            if task is not None:
                task.cancel()
        self._gone()


async def _reader(fd: int, limit: int = 2**16) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    return reader
