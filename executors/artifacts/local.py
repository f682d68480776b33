"""Artifacts in a local directory: the embedded default, or a filesystem every worker mounts."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

from ptw.executors.artifacts.store import Artifact, ArtifactStore, Fill


def checkpoint_path(uri: str) -> Path:
    """The local path of a ``file://`` URI (or of a plain path)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    raise ValueError(
        f"this executor stores artifacts in a local directory and cannot read {uri!r}; "
        "set PTW_ARTIFACTS_URL (and PTW_S3_ENDPOINT_URL) like the worker that saved it"
    )


class LocalStore(ArtifactStore):
    def __init__(self, root: Path, key: bytes | None = None) -> None:
        super().__init__(key)
        self.root = Path(root).resolve()

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def _put(self, name: str, fill: Fill) -> Artifact:
        final = self.root / name
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _sync_directory(final.parent)
        return Artifact(final.as_uri(), final.stat().st_size)

    @contextlib.contextmanager
    def _get(self, uri: str) -> Iterator[IO[bytes]]:
        with open(checkpoint_path(uri), "rb") as f:
            yield f

    def delete(self, uri: str) -> None:
        checkpoint_path(uri).unlink(missing_ok=True)


def _sync_directory(path: Path) -> None:
    # The rename itself must survive a power loss too, or a reported checkpoint could vanish.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
