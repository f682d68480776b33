"""An external run of the tracking client: ``log`` appends to columns, a background thread creates the
run, sends the points in bulk, heartbeats, and keeps everything while the server is away."""

from __future__ import annotations

import _thread
import math
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from ptw.tracking.buffer import PointBuffer
from ptw.tracking.server import BEAT, FINISH, START, Refused, Server, Unreachable
from ptw.tracking.values import RowChecker

TRACEBACK_TAIL = 8_000


def say(line: str) -> None:
    print(f"ptw: {line}", file=sys.stderr, flush=True)


def json_safe(value: Any) -> Any:
    """Summaries travel as JSON: numbers of numpy or torch become floats, non-finite ones null."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | str | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


class TrackedRun:
    """What ``ptw.init`` answers outside our executors. ``log`` never waits on the network."""

    def __init__(
        self,
        server: Server,
        *,
        project: str | None,
        name: str | None,
        params: Mapping[str, Any] | None,
        tags: Sequence[str],
        flush_interval: float = 0.25,
        heartbeat_interval: float = 5.0,
        finish_timeout: float = 30.0,
        interrupt_on_cancel: bool = True,
        buffer: PointBuffer | None = None,
    ) -> None:
        self.params: dict[str, Any] = dict(params or {})
        self.summary: dict[str, Any] = {}
        self.name = name
        self.tags = list(tags)
        self.id: str | None = None  # the run's global id, once the server created it
        self.short_id: str | None = None
        self.status = "RUNNING"
        self._server = server
        self._project = project
        self._idempotency_key = f"ptw-init-{uuid.uuid4()}"
        self._buffer = buffer or PointBuffer()
        self._checker = RowChecker()
        self._next_step = 0
        self._flush_interval = flush_interval
        self._heartbeat_interval = heartbeat_interval
        self._finish_timeout = finish_timeout
        self._interrupt_on_cancel = interrupt_on_cancel
        self._cancel_seen = False
        self._refused: str | None = None  # why the server will take nothing more of this run
        self._away_since: float | None = None
        self._sent_summary: dict[str, Any] | None = None
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._finished = False
        self._create(first=True)
        self._sender = threading.Thread(target=self._send_loop, name="ptw-tracking", daemon=True)
        self._sender.start()

    # -- the training script's side --------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metric values at ``step`` (default: one past the last step logged). Returns at once."""
        if self._finished:
            raise RuntimeError("run.log after the run finished")
        step = self._next_step if step is None else self._checker.step(step)
        keys, values = self._checker.row(metrics, step)
        self._next_step = max(self._next_step, step + 1)
        if keys:
            self._buffer.add(keys, step, time.time(), values)
            if self._buffer.pending >= self._buffer.chunk_points:
                self._wake.set()

    @property
    def cancelled(self) -> bool:
        """True once someone cancelled the run (UI, CLI or API); the script should stop."""
        return self._cancel_seen

    def finish(self, status: str = "SUCCEEDED", error: str | None = None) -> None:
        """Send what is buffered, then end the run SUCCEEDED, FAILED or CANCELLED. Idempotent."""
        if self._finished:
            return
        self._finished = True
        status = status.upper()
        if status not in ("SUCCEEDED", "FAILED", "CANCELLED"):
            raise ValueError("a run finishes SUCCEEDED, FAILED or CANCELLED")
        deadline = time.monotonic() + self._finish_timeout
        self._closing.set()
        self._wake.set()
        self._sender.join(max(0.0, deadline - time.monotonic()))
        self._end(status, error, deadline)
        unsent = self._buffer.pending + self._buffer.dropped
        if unsent:
            why = self._refused or f"the server at {self._server.connection.url} did not answer in time"
            say(f"{unsent} logged points of run {self.short_id or self.name or '?'} were not sent: {why}")
        self._buffer.close()
        self._server.close()

    def __enter__(self) -> TrackedRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if error is None:
            self.finish("SUCCEEDED")
        elif isinstance(error, KeyboardInterrupt):
            self.finish("CANCELLED", "interrupted (Ctrl-C)" if not self._cancel_seen else "cancelled")
        else:
            text = "".join(traceback.format_exception(kind, error, tb))
            self.finish("FAILED", text[-TRACEBACK_TAIL:])

    # -- the sender thread -----------------------------------------------------------------------

    def _create(self, first: bool = False) -> bool:
        if self.id is not None:
            return True
        try:
            run_input: dict[str, Any] = {
                "params": json_safe(self.params),
                "tags": self.tags,
                "idempotencyKey": self._idempotency_key,
            }
            if self.name:
                run_input["name"] = self.name
            if self._project:
                run_input["projectId"] = self._server.project_id(self._project)
            run = self._server.graphql(START, {"input": run_input})["startExternalRun"]
        except Unreachable as away:
            if first:
                say(f"{away}; logging locally until it answers (set PTW_URL if it lives elsewhere)")
            self._note_away()
            return False
        self.id, self.short_id, self.name = run["id"], run["shortId"], run["name"]
        self._back()
        if first:
            say(f"tracking run {self.name} ({self.short_id}) at {self._server.connection.url}")
        return True

    def _send_loop(self) -> None:
        last_beat = time.monotonic()
        while True:
            closing = self._closing.is_set()
            try:
                if self._create():
                    self._send_points()
                    if time.monotonic() - last_beat >= self._heartbeat_interval and not closing:
                        self._heartbeat()
                        last_beat = time.monotonic()
            except Unreachable:
                self._note_away()
            except Refused as refusal:
                self._refuse(str(refusal))
            if closing and (self._refused or (self.id is not None and not self._buffer.pending)):
                return
            if closing and self._away_since is not None:
                time.sleep(0.5)  # the server is away: try again until finish's deadline
                continue
            self._wake.wait(self._flush_interval)
            self._wake.clear()

    def _send_points(self) -> None:
        assert self.id is not None
        while not self._refused and (chunk := self._buffer.next()) is not None:
            try:
                self._server.send_metrics(self.id, chunk.read())
            except Refused as refusal:
                if refusal.code == "BAD_USER_INPUT":  # this chunk only; the next ones may be fine
                    say(f"the server refused {chunk.points} points: {refusal}")
                    self._buffer.sent(chunk)
                    continue
                raise
            self._buffer.sent(chunk)
            self._back()

    def _heartbeat(self) -> None:
        assert self.id is not None
        summary = json_safe(self.summary)
        changed = summary != self._sent_summary
        run = self._server.graphql(BEAT, {"id": self.id, "summary": summary if changed else None})
        self._sent_summary = summary
        self._back()
        self.status = run["heartbeatRun"]["status"]
        if self.status in ("CANCELLING", "CANCELLED") and not self._cancel_seen:
            self._cancel_seen = True
            say(f"run {self.short_id} was cancelled")
            if self._interrupt_on_cancel:
                _thread.interrupt_main()  # like Ctrl-C: the `with` block ends the run CANCELLED
        if self.status in ("FAILED", "CANCELLED", "SUCCEEDED"):
            error = run["heartbeatRun"].get("error") or ""
            self._refuse(f"the server ended the run {self.status} {error}".strip())

    def _end(self, status: str, error: str | None, deadline: float) -> None:
        while self.id is None and not self._create():
            if time.monotonic() >= deadline:
                return
            time.sleep(0.5)
        if self._refused and self.status in ("FAILED", "CANCELLED", "SUCCEEDED"):
            return
        finish_input = {"status": status, "error": error, "summary": json_safe(self.summary)}
        while True:
            try:
                self.status = self._server.graphql(FINISH, {"id": self.id, "input": finish_input})[
                    "finishRun"
                ]["status"]
                return
            except Refused as refusal:
                say(f"could not finish run {self.short_id} {status}: {refusal}")
                return
            except Unreachable as away:
                if time.monotonic() >= deadline:
                    say(f"could not finish run {self.short_id} {status}: {away}")
                    return
                time.sleep(0.5)

    def _refuse(self, why: str) -> None:
        if self._refused is None:
            self._refused = why
            lost = self._buffer.drop_all()
            self._buffer.dropped += lost
            say(f"{why}; logging to it stops here")

    def _note_away(self) -> None:
        if self._away_since is None:
            self._away_since = time.monotonic()

    def _back(self) -> None:
        if self._away_since is not None:
            away = time.monotonic() - self._away_since
            self._away_since = None
            say(f"the server answers again after {away:.0f} s; sending what was logged meanwhile")
