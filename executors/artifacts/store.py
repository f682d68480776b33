"""What every artifact store does: save an object atomically under a name, open one by its URI.

Encryption at rest is done here, above the stores, so a local directory and a bucket seal and check
objects the same way; the stores only move bytes.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

Fill = Callable[[IO[bytes]], object]


class ArtifactStoreError(Exception):
    """An object could not be stored or fetched (the store refused it or cannot be reached)."""


@dataclass(frozen=True)
class Artifact:
    """A stored object: where it is and how many bytes it takes in the store."""

    uri: str
    size: int


class ArtifactStore(ABC):
    """Objects of runs (checkpoints) under names like ``<run_id>/a1-s5.pt``; URIs name them anywhere."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    @property
    def encrypted(self) -> bool:
        return self._key is not None

    @property
    @abstractmethod
    def url(self) -> str:
        """Where this store keeps its objects (``file:///…`` or ``s3://bucket/prefix``)."""

    def save(self, name: str, fill: Fill) -> Artifact:
        """Store what ``fill`` writes under ``name``: all of it, or (when ``fill`` raises) nothing."""
        key = self._key
        if key is None:
            return self._put(name, fill)
        from ptw.executors.artifacts.crypto import SealingWriter

        def sealed(target: IO[bytes]) -> None:
            writer = SealingWriter(target, key)
            fill(writer)  # type: ignore[arg-type]
            writer.finish()

        return self._put(name, sealed)

    @contextlib.contextmanager
    def open(self, uri: str) -> Iterator[IO[bytes]]:
        """The object's bytes as a seekable stream, decrypted and checked when this store has a key."""
        from ptw.executors.artifacts.crypto import open_sealed

        with self._get(uri) as raw:
            yield open_sealed(raw, self._key, uri)

    @abstractmethod
    def delete(self, uri: str) -> None:
        """Remove the object; one that is already gone is no error."""

    @abstractmethod
    def _put(self, name: str, fill: Fill) -> Artifact:
        """Write atomically: no reader may ever see part of the object under its final name."""

    @abstractmethod
    def _get(self, uri: str) -> AbstractContextManager[IO[bytes]]:
        """The stored bytes as a seekable binary stream; FileNotFoundError when there is no object."""
