"""Points waiting to be sent: columns per key, sealed into encoded chunks, bounded in memory and spilled
to disk beyond that, so a long outage of the server loses nothing while the process lives."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ptw.tracking import wire


@dataclass
class Chunk:
    """One request's worth of points: its encoded body in memory, or in a file once spilled."""

    points: int
    body: bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        if self.body is not None:
            return self.body
        assert self.path is not None
        return self.path.read_bytes()

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class PointBuffer:
    """Thread-safe: ``add`` from the training thread, ``next``/``sent``/``failed`` from the sender."""

    def __init__(
        self,
        chunk_points: int = 20_000,
        max_memory_points: int = 2_000_000,
        max_disk_bytes: int = 4 * 1024**3,
    ) -> None:
        self.chunk_points = chunk_points
        self.max_memory_points = max_memory_points
        self.max_disk_bytes = max_disk_bytes
        self.dropped = 0  # points lost because memory and disk were both full
        self._lock = threading.Lock()
        self._open: dict[str, wire.Columns] = {}
        self._open_points = 0
        self._sealed: deque[Chunk] = deque()
        self._memory_points = 0  # in sealed chunks held in memory
        self._disk_bytes = 0
        self._spill_dir: Path | None = None

    @property
    def pending(self) -> int:
        with self._lock:
            return self._open_points + sum(c.points for c in self._sealed)

    def add(self, keys: Sequence[str], step: int, at: float, values: Sequence[float]) -> None:
        with self._lock:
            for key, value in zip(keys, values, strict=True):
                columns = self._open.get(key)
                if columns is None:
                    columns = self._open[key] = (array("q"), array("d"), array("d"))
                columns[0].append(step)
                columns[1].append(value)
                columns[2].append(at)
            self._open_points += len(keys)
            if self._open_points >= self.chunk_points:
                self._seal()

    def next(self) -> Chunk | None:
        """The oldest chunk to send (sealing what is open when nothing else waits); None when empty.
        It stays first in line until ``sent`` or ``failed`` says how its sending went."""
        with self._lock:
            if not self._sealed and self._open_points:
                self._seal()
            return self._sealed[0] if self._sealed else None

    def sent(self, chunk: Chunk) -> None:
        with self._lock:
            if self._sealed and self._sealed[0] is chunk:
                self._sealed.popleft()
                self._forget(chunk)

    def drop_all(self) -> int:
        """Give up on everything waiting (the run ended elsewhere); answers how many points that was."""
        with self._lock:
            lost = self._open_points + sum(c.points for c in self._sealed)
            for chunk in self._sealed:
                self._forget(chunk)
            self._sealed.clear()
            self._open, self._open_points = {}, 0
            return lost

    def close(self) -> None:
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)

    def _forget(self, chunk: Chunk) -> None:
        if chunk.body is not None:
            self._memory_points -= chunk.points
        else:
            self._disk_bytes -= chunk.path.stat().st_size if chunk.path and chunk.path.exists() else 0
        chunk.discard()

    def _seal(self) -> None:
        chunk = Chunk(self._open_points, body=wire.encode(self._open))
        self._open, self._open_points = {}, 0
        self._sealed.append(chunk)
        self._memory_points += chunk.points
        # The oldest chunks go to disk first: they are sent first, read back once each.
        for old in list(self._sealed):
            if self._memory_points <= self.max_memory_points:
                break
            if old.body is not None and old is not chunk:
                self._spill(old)
        if self._memory_points > self.max_memory_points:
            self._spill(chunk)

    def _spill(self, chunk: Chunk) -> None:
        body = chunk.body
        assert body is not None
        self._memory_points -= chunk.points
        chunk.body = None
        if self._disk_bytes + len(body) > self.max_disk_bytes:
            self.dropped += chunk.points
            self._sealed.remove(chunk)
            return
        if self._spill_dir is None:
            self._spill_dir = Path(tempfile.mkdtemp(prefix="ptw-unsent-"))
        fd, name = tempfile.mkstemp(dir=self._spill_dir, suffix=".ptwc")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        chunk.path = Path(name)
        self._disk_bytes += len(body)
