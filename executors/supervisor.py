"""The RunSupervisor: drives one attempt of a run in a child runner and records how it ends, exactly once.

It does not care where the job came from (the embedded pool, an arq worker): it is given a claimed RunJob
and a warm runner, pumps the runner's messages into the domain services (running, metrics, checkpoints,
log lines), stops the child on cancel or timeout, and always finishes the attempt, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from ptw.domain.artifacts import KIND_CHECKPOINT
from ptw.domain.clock import utcnow
from ptw.domain.errors import DomainError
from ptw.domain.events import RunChanged, run_topic
from ptw.domain.metrics import sifted
from ptw.domain.ports import EventBus
from ptw.domain.retry import Backoff, retrying
from ptw.domain.run_story import AttemptOutcome
from ptw.domain.runs import RunJob, RunStatus
from ptw.domain.services.execution import ExecutionService, Outcome
from ptw.domain.services.metrics import MetricService
from ptw.executors import protocol
from ptw.executors.memory_watch import MB, over_limit
from ptw.executors.run_output import RunOutput
from ptw.executors.trial_objective import ObjectiveWatch, TrialAdvisor
from ptw.executors.warm_runner import RunnerFailed, WarmRunner

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ERROR = 4000
WRITE_BACKOFF = Backoff(first=0.1, limit=2.0)  # the database refused a write for a moment
COALESCE_POINTS = 50_000  # within the domain's 100,000 points per call
CANCEL, TIMEOUT, SUPERSEDED, DRAIN, MEMORY = "cancel", "timeout", "superseded", "drain", "memory"
# A run is written RUNNING this long after its training function was entered; one that ends sooner goes
# RUNNING with its end, in one transaction instead of two (short trials, pruned runs, bursts of small runs:
# the write of RUNNING held up the end of every such run and the claim of the next one).
RUNNING_AFTER = 0.05
# Told a trial's objective values and asked whether to prune the run (the optimizer's hook).
PruneAdvisor = TrialAdvisor


@dataclass(frozen=True)
class SupervisionLimits:
    cancel_grace: float = 2.0  # after 'cancel', before SIGTERM
    kill_grace: float = 2.0  # after SIGTERM, before SIGKILL
    status_poll: float = 1.0  # fallback to the bus for noticing a cancel
    drain_timeout: float = 5.0  # reading what a stopped child left in its pipes


class RunSupervisor:
    def __init__(
        self,
        execution: ExecutionService,
        metrics: MetricService,
        bus: EventBus,
        job: RunJob,
        runner: WarmRunner,
        limits: SupervisionLimits | None = None,
        prune_advisor: PruneAdvisor | None = None,
        node: dict[str, Any] | None = None,
    ) -> None:
        self.execution = execution
        self.node = node or {}  # a multi-node run's placement of this node (see executors/gang.py)
        self.metrics = metrics
        self.bus = bus
        self.job = job
        self.runner = runner
        self.limits = limits or SupervisionLimits()
        self.prune_advisor = prune_advisor
        self.objective = ObjectiveWatch(job, prune_advisor)
        self.output = RunOutput(execution, job.run_id, job.project_id)
        self.result: dict[str, Any] | None = None
        self.error: protocol.Failed | None = None
        self.stop_reason: str | None = None
        self.pruned = False  # the optimizer told the run to stop early
        self.draining = False  # the worker is shutting down: the attempt is handed back, not finished
        self.memory_used = 0  # bytes, once the run went over its memory limit
        self.device: str | None = None  # where the training function was entered (protocol.Started)
        self.entered_at: datetime | None = None  # and when
        self._marking: asyncio.Task[None] | None = None  # writes RUNNING, RUNNING_AFTER after the start
        self._marked = False  # its write began: the end waits for it instead of writing RUNNING itself
        self._drain = asyncio.Event()
        self._stop = asyncio.Event()

    async def run(self) -> Outcome:
        """Supervise the attempt to its end and finish it; never raises for what the run or the child did."""
        try:
            outcome = await self._supervise()
        except Exception as exc:
            log.exception("supervising run %s attempt %s failed", self.job.run_id, self.job.attempt)
            outcome = Outcome(
                RunStatus.FAILED, error=f"the executor failed while supervising the run: {exc!r}"
            )
        finally:
            await self.runner.stop(self.limits.kill_grace, self.limits.kill_grace)
        entered_on = await self._settle_running()
        job = self.job
        handed_back = self.draining and self.stop_reason in (None, DRAIN)
        await self._retrying(
            lambda: self.objective.close(final=not (handed_back or outcome.retryable)),
            "tell the optimizer the objective",
        )
        if handed_back:
            await self._retrying(
                lambda: self.execution.release(job.run_id, job.attempt, "its worker is shutting down"),
                "hand the run back",
            )
            return outcome
        await self._retrying(
            lambda: self.execution.finish(job.run_id, job.attempt, outcome, entered_on, self.entered_at),
            "finish the run",
        )
        return outcome

    def drain(self) -> None:
        """The worker is shutting down: tell the training code (``ctx.stopping``) so it can checkpoint and
        return; whatever the attempt does from now on, the run is handed back to the queue. An attempt
        that already sent its result or error is finished as usual."""
        if self.result is None and self.error is None:
            self.draining = True
            self._drain.set()

    async def _tell_drain(self) -> None:
        await self._drain.wait()
        with contextlib.suppress(RunnerFailed):
            await self.runner.send_control(protocol.DRAIN)

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    async def _supervise(self) -> Outcome:
        loop = asyncio.get_running_loop()
        watcher = asyncio.create_task(self._watch_for_cancel())
        weighing = asyncio.create_task(self._watch_memory())
        stdout = asyncio.create_task(self.output.pump(self.runner.process.stdout, "stdout"))
        stderr = asyncio.create_task(self.output.pump(self.runner.process.stderr, "stderr"))
        pump = asyncio.create_task(self._pump_messages())
        stopping = asyncio.create_task(self._stop.wait())
        telling: asyncio.Task[None] | None = None
        try:
            with contextlib.suppress(RunnerFailed):  # a runner that died is told apart by its exit below
                await self.runner.send_job({**job_message(self.job), **self.node})
            telling = asyncio.create_task(self._tell_drain())  # control words only after the job
            timeout = self.job.timeout_seconds
            deadline = loop.time() + timeout if timeout else None
            await asyncio.wait(
                {pump, stopping},
                timeout=None if deadline is None else max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not pump.done():
                self.request_stop(TIMEOUT)
                await self._stop_child()
                await asyncio.wait({pump}, timeout=self.limits.drain_timeout)
            returncode = await self.runner.wait(self.limits.kill_grace)
            if returncode is None:
                returncode = await self.runner.stop(self.limits.kill_grace, self.limits.kill_grace)
            await asyncio.wait({stdout, stderr}, timeout=self.limits.drain_timeout)
        finally:
            for task in (watcher, weighing, stdout, stderr, pump, stopping, telling):
                if task is not None:
                    task.cancel()
            await self.output.flush_dropped()
        return self._outcome(returncode)

    async def _watch_memory(self) -> None:
        limit = self.job.resources.memory_mb
        if limit is None:
            return
        used = await over_limit(self.runner.pid, limit)
        if used is not None:
            self.memory_used = used
            self.request_stop(MEMORY)

    def _memory_text(self) -> str:
        return (
            f"the run's processes used {self.memory_used / MB:.0f} MB, over its memory limit of "
            f"{self.job.resources.memory_mb} MB (memoryMb)"
        )

    async def _stop_child(self) -> None:
        """'cancel' first (the code may return by itself), then SIGTERM, then SIGKILL; a run over its
        memory limit is killed at once, as it would go on growing while it is asked."""
        what = {
            CANCEL: "cancel requested",
            TIMEOUT: f"timed out after {self.job.timeout_seconds} s",
            DRAIN: "the worker's grace period to shut down is over",
            MEMORY: self._memory_text() if self.stop_reason == MEMORY else "",
        }
        await self.output.system(f"{what.get(self.stop_reason or '', self.stop_reason)}: stopping the run")
        if self.stop_reason == MEMORY:
            await self.runner.stop(0.0, self.limits.kill_grace)
            return
        with contextlib.suppress(RunnerFailed):
            await self.runner.send_control(protocol.CANCEL)
        if await self.runner.wait(self.limits.cancel_grace) is None:
            self.runner.signal(signal.SIGTERM)
            if await self.runner.wait(self.limits.kill_grace) is None:
                self.runner.signal(signal.SIGKILL)
                await self.runner.wait(self.limits.kill_grace)

    async def _pump_messages(self) -> None:
        """Handle messages in order. Metrics batches that queued up while the database was busy are
        stored as one: fewer, larger transactions are how the store keeps up with a fast run."""
        inbox: asyncio.Queue[protocol.Message | None] = asyncio.Queue(maxsize=256)
        reader = asyncio.create_task(self._read_messages(inbox))
        held: protocol.Message | None = None
        ended = False  # the end of the messages was taken while coalescing: handle what came, then stop
        try:
            while not ended:
                message, held = held or await inbox.get(), None
                if message is None:  # the end of the messages
                    return
                if isinstance(message, protocol.Metrics):
                    series = list(message.series)
                    size = sum(len(s) for s in series)
                    while size < COALESCE_POINTS and not inbox.empty():
                        following = inbox.get_nowait()
                        if following is None:
                            ended = True
                            break
                        if not isinstance(following, protocol.Metrics):
                            held = following
                            break
                        series += following.series
                        size += sum(len(s) for s in following.series)
                    message = protocol.Metrics(tuple(series))
                try:
                    await self._handle(message)
                except Exception:
                    log.exception(
                        "run %s: cannot handle a %s message", self.job.run_id, type(message).__name__
                    )
        finally:
            reader.cancel()

    async def _read_messages(self, inbox: asyncio.Queue[protocol.Message | None]) -> None:
        try:
            async for message in self.runner.messages():
                await inbox.put(message)
        except Exception:  # an unreadable pipe ends the messages like an exited child does
            log.exception("run %s: cannot read the runner's messages", self.job.run_id)
        await inbox.put(None)

    async def _handle(self, message: protocol.Message) -> None:
        job = self.job
        match message:
            case protocol.Metrics(series=logged):
                # The SDK refuses bad points at the call; one that came anyway is left out, never the batch.
                series, problems = sifted(logged)
                for problem in problems:
                    await self.output.system(f"metrics: {problem}")
                await self._retrying(lambda: self.metrics.record(job.run_id, series), "record metrics")
                if self.objective.active and await self.objective.logged(series):
                    await self._prune()
            case protocol.Started(device=device):
                self.device, self.entered_at = str(device), utcnow()
                self._marking = asyncio.create_task(self._mark_running())
            case protocol.CheckpointSaved(uri=uri, step=step, size=size, name=name, artifact=kind):
                await self._retrying(
                    lambda: self.execution.add_checkpoint(
                        job.run_id, job.attempt, step, str(uri), int(size), name, kind or KIND_CHECKPOINT
                    ),
                    "record an artifact",
                )
            case protocol.Report(value=value, step=step, metric=metric):
                if await self.objective.report(metric, float(value), int(step)):
                    await self._prune()
                elif self.objective.unnamed_reports == 1 and metric is None:
                    await self.output.system(
                        f"ctx.report without metric= is not taken for this search's objective "
                        f"{job.objective!r}: its logged values are (or say which metric a report is: "
                        f"ctx.report(value, step, metric={job.objective!r}))"
                    )
            case protocol.LogLine(line=line):
                await self.output.system(str(line))
            case protocol.Result(summary=summary):
                self.result = summary or {}
            case protocol.Failed():
                self.error = message

    async def _mark_running(self) -> None:
        await asyncio.sleep(RUNNING_AFTER)
        self._marked = True
        job, device, at = self.job, str(self.device), self.entered_at
        run = await self._retrying(
            lambda: self.execution.mark_running(job.run_id, job.attempt, device, at), "mark running"
        )
        if run is None:
            self.request_stop(SUPERSEDED)
        elif run.status is RunStatus.CANCELLING:
            self.request_stop(CANCEL)

    async def _settle_running(self) -> str | None:
        """Once the child is gone: the device to finish the run with when RUNNING was not written yet
        (the write is called off), else None (its write, if under way, is waited for first)."""
        marking, marked = self._marking, self._marked
        if marking is None:
            return None  # the function was never entered
        if not marked:  # still waiting: called off, the end writes RUNNING with it
            marking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await marking
        return None if marked else self.device

    async def _prune(self) -> None:
        self.pruned = True  # once told, the run ends PRUNED when its function returns
        with contextlib.suppress(RunnerFailed):
            await self.runner.send_control(protocol.PRUNE)

    async def _watch_for_cancel(self) -> None:
        """The bus tells at once; polling the status covers what the bus missed (or a lost subscription)."""
        poll = asyncio.create_task(self._poll_status())
        try:
            async with self.bus.subscribe([run_topic(self.job.run_id)]) as events:
                async for event in events:
                    if isinstance(event, RunChanged) and event.run.id == self.job.run_id:
                        self._notice(event.run.status, event.run.attempt)
        except Exception:
            log.warning("run %s: lost its event subscription; polling only", self.job.run_id, exc_info=True)
        await poll

    async def _poll_status(self) -> None:
        # Nothing to look at before the first interval: the claim read the status a moment ago.
        await asyncio.sleep(self.limits.status_poll)
        while not self._stop.is_set():
            try:
                self._notice(await self.execution.status(self.job.run_id), self.job.attempt)
            except Exception:
                log.warning("run %s: cannot read its status", self.job.run_id, exc_info=True)
            await asyncio.sleep(self.limits.status_poll)

    def _notice(self, status: RunStatus | None, attempt: int) -> None:
        if status is RunStatus.CANCELLING:
            self.request_stop(CANCEL)
        elif status is None or status.terminal or status is RunStatus.QUEUED or attempt != self.job.attempt:
            self.request_stop(SUPERSEDED)  # someone else ended or re-queued this attempt

    def _outcome(self, returncode: int | None) -> Outcome:
        if self.stop_reason == CANCEL:
            return Outcome(RunStatus.CANCELLED, summary=self.result)
        if self.stop_reason == TIMEOUT:
            error = f"timed out after {self.job.timeout_seconds} s"
            return Outcome(RunStatus.FAILED, error=error, how=AttemptOutcome.TIMED_OUT)
        if self.stop_reason == MEMORY:
            return Outcome(RunStatus.FAILED, error=self._memory_text())
        if self.stop_reason == SUPERSEDED:
            return Outcome(RunStatus.FAILED, error="this attempt was superseded")  # finish ignores it
        if self.result is not None:
            return Outcome(RunStatus.PRUNED if self.pruned else RunStatus.SUCCEEDED, summary=self.result)
        if self.error is not None:
            return Outcome(RunStatus.FAILED, error=self._error_text(self.error))
        return Outcome(RunStatus.FAILED, error=self._death_text(returncode), retryable=True)

    def _error_text(self, error: protocol.Failed) -> str:
        first = f"{error.type}: {error.message}"
        if error.phase == protocol.PHASE_IMPORT:
            return f"cannot import entrypoint {self.job.entrypoint!r}: {first}"
        return f"{first}\n{tail(str(error.traceback or ''), MAX_ERROR - len(first) - 1)}"

    def _death_text(self, returncode: int | None) -> str:
        if returncode is None:
            how = "could not be reaped"
        elif returncode < 0:
            name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else -returncode
            how = f"was killed by {name}" + (" (out of memory?)" if returncode == -signal.SIGKILL else "")
        else:
            how = f"exited with code {returncode}"
        stderr = self.output.stderr_tail()
        text = f"the run's process {how} without a result"
        return text + (f"; last stderr:\n{tail(stderr, MAX_ERROR - len(text))}" if stderr else "")

    async def _retrying(self, call: Callable[[], Awaitable[T]], what: str, attempts: int = 8) -> T | None:
        """Retry a write the database refused for a moment; a domain refusal is final and reported."""

        def failed(error: BaseException, _pause: float) -> None:
            log.warning("run %s: cannot %s yet (%r); retrying", self.job.run_id, what, error)

        try:
            return await retrying(
                call, WRITE_BACKOFF, final=(DomainError,), attempts=attempts, on_failure=failed
            )
        except DomainError as exc:
            log.warning("run %s: cannot %s: %s", self.job.run_id, what, exc.message)
            await self.output.system(f"cannot {what}: {exc.message}")
        except Exception:
            log.exception("run %s: gave up trying to %s", self.job.run_id, what)
        return None


def job_message(job: RunJob) -> dict[str, Any]:
    return {
        "run_id": job.run_id,
        "project_id": job.project_id,
        "attempt": job.attempt,
        "entrypoint": job.entrypoint,
        "params": job.params,
        "checkpoint_uri": job.checkpoint_uri,
        "processes": job.resources.processes,
        "nodes": job.resources.nodes,
        "distributed": job.resources.distributed,
    }


def tail(text: str, limit: int) -> str:
    """The end of ``text`` within ``limit`` characters, cut at a line start."""
    if len(text) <= limit:
        return text
    cut = text[len(text) - limit + 4 :]
    newline = cut.find("\n")
    return "...\n" + (cut[newline + 1 :] if 0 <= newline < len(cut) - 1 else cut)
