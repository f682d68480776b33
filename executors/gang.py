"""Gang placement of multi-node runs (``nodes: M``) on ``ptw worker`` executors: all M slots or none.

A run's attempt is one job on its class's queue, as for any run. The slot that takes it leads the gang:

1. It takes the class's **assembly lock** (a Redis key, ``SET NX`` with a time to live), so at most one
   gang of a class assembles at a time: two gangs never each hold half of the free executors. A slot
   that finds the lock taken hands the job back (arq's ``Retry``) and holds nothing.
2. It counts the free executors of the class in the registry (their heartbeats). Fewer than M: it says
   so on the run (``error`` and a system line: the run stays QUEUED) and hands the job back.
3. It publishes an endpoint (its host and a free port) and enqueues M - 1 **node jobs** at the head of the
   queue (score 1: before every waiting run). A slot that takes a node job joins the gang (a Redis list)
   and waits for the word. When all M - 1 joined within ``JOIN_TIMEOUT``, the leader claims the attempt
   (QUEUED → STARTING), says "go" and releases the lock; otherwise it says "off" and every member lets its
   slot go, and the leader's job goes back to wait. Node jobs are keyed by a fresh token per assembly, so
   a late one of an abandoned gang finds "off" and does nothing.
4. Each node's runner starts torch's elastic agent with the static rendezvous at the leader's endpoint
   (node 0 hosts the c10d store), its node rank and a timeout. Only the leader's supervisor reports: node
   0's rank 0 is global rank 0, the one whose metrics, checkpoints and result are the run's. The other
   nodes' supervisors (:func:`follow`) read their runner's output only to keep the pipes flowing, and stop
   it once the attempt is no longer in progress (cancelled, finished, re-queued).
5. A node lost (its worker killed, a rank crashed) ends the group: the surviving ranks fail on the lost
   peer, so the leader's attempt ends without a result and is retried from the checkpoint as attempt + 1;
   when the leader itself is lost, the run monitor sees its heartbeats stop and re-queues the run.
   Cancel reaches every node: the leader's runner is told, and the others see the run CANCELLING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis

from ptw.domain.ports import ExecutorRegistry
from ptw.domain.runs import RunJob, RunStatus
from ptw.domain.services.execution import ExecutionService
from ptw.executors.ranks import free_port
from ptw.executors.supervisor import job_message
from ptw.executors.warm_runner import RunnerFailed, WarmRunner

log = logging.getLogger(__name__)

NODE_FUNCTION = "run_node"  # the arq function of a node job, next to RUN_FUNCTION
JOIN_TIMEOUT = 20.0  # seconds the other nodes of a gang may take to join before it is called off
POLL = 0.05
WAIT_RETRY = 2.0  # seconds before a gang that could not assemble tries again
STATUS_POLL = 1.0  # how often a follower node checks that its attempt is still in progress
HEAD = datetime.fromtimestamp(0.001, UTC)  # score 1: a node job goes before every waiting run


class NotPlaced(Exception):
    """The gang could not be placed now; its job goes back to the queue, holding nothing."""


def node_address() -> str:
    """The address the other nodes reach this one at (its host name's address, else loopback)."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def waiting_reason(nodes: int, resource_class: str, free: int) -> str:
    return (
        f"waiting: the run needs {nodes} executors of resource class {resource_class!r} at once and "
        f"{free} {'is' if free == 1 else 'are'} free; it stays queued and holds none until they are"
    )


@dataclass
class Gang:
    """The Redis side of one class's gang placement (keys under the class's queue name)."""

    redis: ArqRedis
    queue: str
    registry: ExecutorRegistry
    resource_class: str

    def _lock(self) -> str:
        return f"{self.queue}:gang-lock"

    def _joined(self, token: str) -> str:
        return f"{self.queue}:gang:{token}:joined"

    def _word(self, token: str) -> str:
        return f"{self.queue}:gang:{token}:word"

    async def free_executors(self) -> int:
        states = await self.registry.alive()
        return sum(1 for s in states if self.resource_class in s.resource_classes and not s.busy)

    async def lead(
        self,
        execution: ExecutionService,
        run_id: str,
        attempt: int,
        nodes: int,
        claim: Callable[[], Awaitable[RunJob | None]],
    ) -> tuple[RunJob | None, dict[str, Any]]:
        """Assemble the gang and claim the attempt: (the claimed job or None when stale, node 0's
        placement). Raises NotPlaced when the gang cannot be placed now."""
        token = secrets.token_hex(8)
        ttl_ms = int((JOIN_TIMEOUT + 10) * 1000)
        if not await self.redis.set(self._lock(), token, nx=True, px=ttl_ms):
            raise NotPlaced("another gang of the class is assembling")
        try:
            free = await self.free_executors()
            if free < nodes:
                await execution.note_waiting(
                    run_id, attempt, waiting_reason(nodes, self.resource_class, free)
                )
                raise NotPlaced(f"{free} free executors for {nodes} nodes")
            host = node_address()
            endpoint = f"{host}:{free_port(host)}"
            await self.redis.set(self._word(token), "assembling", px=ttl_ms)
            for rank in range(1, nodes):
                await self.redis.enqueue_job(
                    NODE_FUNCTION,
                    run_id,
                    attempt,
                    rank,
                    endpoint,
                    token,
                    self.resource_class,
                    _job_id=f"{self.queue}:node:{token}:{rank}",
                    _queue_name=self.queue,
                    _defer_until=HEAD,
                    _expires=JOIN_TIMEOUT,
                )
            if not await self._all_joined(token, nodes - 1):
                await self.redis.set(self._word(token), "off", px=ttl_ms)
                raise NotPlaced(f"the other nodes did not join within {JOIN_TIMEOUT:g} s")
            job = await claim()
            await self.redis.set(self._word(token), "go" if job is not None else "off", px=ttl_ms)
            return job, {"rendezvous": endpoint, "node_rank": 0}
        finally:
            if await self.redis.get(self._lock()) == token.encode():
                await self.redis.delete(self._lock())

    async def _all_joined(self, token: str, others: int) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + JOIN_TIMEOUT
        while loop.time() < deadline:
            if await self.redis.llen(self._joined(token)) >= others:
                return True
            await asyncio.sleep(POLL)
        return False

    async def join(self, token: str, slot_id: str) -> bool:
        """A node job's slot joins; True once the leader said "go", False when the gang is off."""
        if await self.redis.get(self._word(token)) != b"assembling":
            return False
        await self.redis.rpush(self._joined(token), slot_id)
        await self.redis.pexpire(self._joined(token), int((JOIN_TIMEOUT + 10) * 1000))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + JOIN_TIMEOUT + 5
        while loop.time() < deadline:
            word = await self.redis.get(self._word(token))
            if word != b"assembling":
                return word == b"go"
            await asyncio.sleep(POLL)
        return False


async def follow(
    execution: ExecutionService, job: RunJob, runner: WarmRunner, node: dict[str, Any], kill_grace: float
) -> None:
    """Run a node other than node 0 of the attempt in ``runner`` until it exits, stopping it once the
    attempt is no longer in progress. It reports nothing: node 0's supervisor does."""
    pumps = [
        asyncio.create_task(_discard(runner)),
        *(asyncio.create_task(_drain(stream)) for stream in (runner.process.stdout, runner.process.stderr)),
    ]
    try:
        with contextlib.suppress(RunnerFailed):
            await runner.send_job({**job_message(job), **node})
        while await runner.wait(STATUS_POLL) is None:
            current = await execution.node_job(job.run_id, job.attempt, claimed=True)
            if current is None or await execution.status(job.run_id) is RunStatus.CANCELLING:
                log.info("run %s attempt %s ended: stopping node %s", job.run_id, job.attempt, node)
                break
    finally:
        await runner.stop(kill_grace, kill_grace)
        for task in pumps:
            task.cancel()


async def _discard(runner: WarmRunner) -> None:
    with contextlib.suppress(Exception):
        async for _ in runner.messages():
            pass


async def _drain(stream: asyncio.StreamReader | None) -> None:
    if stream is None:
        return
    with contextlib.suppress(Exception):
        while await stream.read(65536):
            pass
