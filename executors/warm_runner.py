"""The parent's handle on one child runner: start it warm, hand it a job, talk to it, stop it for sure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from ptw.executors import protocol
from ptw.executors.device import VISIBLE_DEVICES, GpuLease, runner_gpus
from ptw.executors.fork_client import ForkedProcess, ForkServerClient
from ptw.executors.process_tree import descendants, end_processes

log = logging.getLogger(__name__)

# One metrics message holds up to 5,000 points of ~60 bytes; leave room for large summaries too.
MESSAGE_LIMIT = 32 * 1024 * 1024


RunnerProcess = asyncio.subprocess.Process | ForkedProcess


class RunnerFailed(Exception):
    """The runner died or never became ready."""


class WarmRunner:
    """A ``python -m ptw.executors.runner`` process in its own session: stopping it stops what it spawned."""

    def __init__(self, process: RunnerProcess, messages: asyncio.StreamReader) -> None:
        self.process = process
        self._messages = messages

    @classmethod
    async def start(
        cls,
        artifacts_dir: Path,
        *,
        python: str = sys.executable,
        threads: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> WarmRunner:
        """A runner in a new interpreter (it imports torch itself: seconds)."""
        read_fd, write_fd = os.pipe()
        command = [python, "-m", "ptw.executors.runner", "--message-fd", str(write_fd)]
        command += ["--artifacts-dir", str(artifacts_dir)]
        if threads:
            command += ["--threads", str(threads)]
        child_env, gpu = await runner_environ(env)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
                env=child_env,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            if gpu is not None:
                gpu.release()
            raise
        finally:
            os.close(write_fd)  # the child holds the only write end: its exit is our EOF
        if gpu is not None:
            gpu.holder = process
        reader = asyncio.StreamReader(limit=MESSAGE_LIMIT)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        return cls(process, reader)

    @classmethod
    async def fork(cls, server: ForkServerClient, env: Mapping[str, str] | None = None) -> WarmRunner:
        """A runner forked from the slot's fork server, torch already imported (milliseconds)."""
        child_env, gpu = await runner_environ(env)
        try:
            process, messages = await server.fork(child_env)
        except BaseException:
            if gpu is not None:
                gpu.release()
            raise
        if gpu is not None:
            gpu.holder = process
        return cls(process, messages)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def ready(self, within: float = 120.0) -> protocol.Ready:
        """Wait for the ``ready`` message: torch is imported and the device chosen."""
        try:
            message = await asyncio.wait_for(self.next_message(), within)
        except TimeoutError:
            await self.stop()
            raise RunnerFailed(f"the runner did not become ready within {within:.0f} s") from None
        if not isinstance(message, protocol.Ready):
            await self.stop()
            stderr = await self._stderr_tail()
            raise RunnerFailed(f"the runner exited before it was ready (exit {self.returncode}): {stderr}")
        return message

    async def next_message(self) -> protocol.Message | None:
        """The next message, or None once the child closed the pipe. What is no frame is skipped up to
        the next one (see ``protocol.MAGIC``), and so is a frame that holds no message."""
        reader = self._messages
        while True:
            try:
                if await reader.readexactly(len(protocol.MAGIC)) != protocol.MAGIC:
                    log.warning("runner %s sent what is no frame; skipping to the next one", self.pid)
                    await reader.readuntil(protocol.MAGIC)
                head_size, body_size = protocol.SIZES.unpack(await reader.readexactly(protocol.SIZES.size))
                if head_size + body_size > MESSAGE_LIMIT:
                    log.warning(
                        "runner %s sent a frame of %d bytes; skipped", self.pid, head_size + body_size
                    )
                    continue
                head = await reader.readexactly(head_size)
                body = await reader.readexactly(body_size)
            except asyncio.IncompleteReadError:
                return None
            except asyncio.LimitOverrunError:
                log.warning("runner %s sent more than %d bytes that are no frame", self.pid, MESSAGE_LIMIT)
                return None
            try:
                return protocol.decode(head, body)
            except ValueError:
                log.warning("runner %s sent a frame that is not a message: %.200r", self.pid, head)

    async def messages(self) -> AsyncIterator[protocol.Message]:
        while (message := await self.next_message()) is not None:
            yield message

    async def send_job(self, job: Mapping[str, Any]) -> None:
        await self._write(json.dumps(job, separators=(",", ":")).encode() + b"\n")

    async def send_control(self, word: str) -> None:
        if word not in protocol.CONTROL_WORDS:
            raise ValueError(f"unknown control word {word!r}")
        await self._write(word.encode() + b"\n")

    async def _write(self, data: bytes) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            raise RunnerFailed("the runner's stdin is closed")
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise RunnerFailed(f"the runner is gone: {exc}") from exc

    def signal(self, signum: int) -> None:
        """Signal the runner's whole process group (data loader workers and the like go with it)."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    async def wait(self, within: float | None) -> int | None:
        """The exit status, or None if it still runs after ``within`` seconds."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.process.wait()), within)
        except TimeoutError:
            return None

    async def stop(self, term_grace: float = 2.0, kill_grace: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``term_grace``; returns the exit status (None: not reaped in time).
        Descendants that left the runner's process group (``setsid``) are ended too."""
        live = self.process.returncode is None
        tree = await asyncio.to_thread(descendants, self.process.pid) if live else []
        if self.process.returncode is None:
            self.signal(signal.SIGTERM)
            if await self.wait(term_grace) is None:
                self.signal(signal.SIGKILL)
                await self.wait(kill_grace)
        # The group may hold children that outlived the runner itself.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if tree:
            await asyncio.to_thread(end_processes, tree, 0.0)
        return self.process.returncode

    async def close_idle(self, grace: float = 2.0) -> None:
        """Stop a runner that never got a job: closing stdin lets it exit on its own."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        if await self.wait(grace) is None:
            await self.stop()

    async def _stderr_tail(self, limit: int = 2000) -> str:
        stream = self.process.stderr
        if stream is None:
            return ""
        try:
            data = await asyncio.wait_for(stream.read(), 2.0)
        except TimeoutError:
            return ""
        return data.decode(errors="replace")[-limit:].strip()


async def runner_environ(env: Mapping[str, str] | None) -> tuple[dict[str, str], GpuLease | None]:
    """A runner's environment (the server's, less its secrets, plus ``env``), and the GPU it leased.
    Each run its own GPU: the runner sees only the one it leased (as cuda:0) until it exits.
    (The first call asks nvidia-smi, so it runs off the event loop.)"""
    child_env = {**training_environ_with(env or {}), "PYTHONUNBUFFERED": "1"}
    gpu = None if VISIBLE_DEVICES in (env or {}) else (await asyncio.to_thread(runner_gpus)).lease()
    if gpu is not None:
        child_env.update(gpu.env())
    return child_env, gpu


# Settings of the control plane that training code (tenant code) must never see: database and Redis URLs
# carry credentials. The child gets what it needs explicitly through ``env`` (artifact store, checkpoint key).
CONTROL_PLANE_SECRETS = ("PTW_DATABASE_URL", "PTW_REDIS_URL", "PTW_TEST_POSTGRES_URL", "PTW_TEST_REDIS_URL")


def training_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The server's environment without the control plane's own credentials."""
    return {k: v for k, v in environ.items() if k not in CONTROL_PLANE_SECRETS}


def training_environ_with(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of the processes that run training code: this process's, without the control
    plane's credentials, plus the executor's own settings (``extra``)."""
    return {**training_environ(os.environ), **extra}
