"""The artifact store as the control plane's ``ArtifactFiles``: it reads and deletes what executors saved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import IO

from ptw.executors.artifacts.store import ArtifactStore


class StoreFiles:
    """Made from a factory: a bucket's client is only built once a file is read or deleted."""

    def __init__(self, make: Callable[[], ArtifactStore]) -> None:
        self._make = make
        self._store: ArtifactStore | None = None

    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = self._make()
        return self._store

    def open(self, uri: str) -> AbstractContextManager[IO[bytes]]:
        return self.store.open(uri)

    async def delete(self, uris: Sequence[str]) -> None:
        def delete_all() -> None:
            for uri in uris:
                self.store.delete(uri)

        await asyncio.to_thread(delete_all)
