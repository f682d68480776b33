"""Where runs keep their artifacts (checkpoints): a local directory or an S3-compatible bucket.

The stores live in ``executors`` rather than ``infra`` because the child runner builds one and the SDK
uses it, and neither may import ``infra``; the server side only ever sees the URIs they report.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ptw.executors.artifacts.files import StoreFiles
from ptw.executors.artifacts.local import LocalStore, checkpoint_path
from ptw.executors.artifacts.store import Artifact, ArtifactStore, ArtifactStoreError

__all__ = [
    "ENDPOINT_ENV",
    "KEY_ENV",
    "URL_ENV",
    "Artifact",
    "ArtifactStore",
    "ArtifactStoreError",
    "LocalStore",
    "StoreFiles",
    "checkpoint_path",
    "store_for",
    "store_from_env",
]

URL_ENV = "PTW_ARTIFACTS_URL"
ENDPOINT_ENV = "PTW_S3_ENDPOINT_URL"
KEY_ENV = "PTW_CHECKPOINT_KEY"


def store_for(url: str, key: bytes | None = None, *, endpoint_url: str | None = None) -> ArtifactStore:
    """The store at ``file:///path`` (or a plain path) or ``s3://bucket/prefix``; ``key``: AES-256-GCM."""
    if url.startswith("s3://"):
        from ptw.executors.artifacts.s3 import S3Store

        return S3Store(url, key, endpoint_url=endpoint_url)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported artifacts URL {url!r}: use file:///path or s3://bucket/prefix")
    return LocalStore(checkpoint_path(url), key)


def store_from_env(environ: Mapping[str, str], default_dir: Path) -> ArtifactStore:
    """The store a runner was configured with (``PTW_ARTIFACTS_URL``, ``PTW_S3_ENDPOINT_URL``,
    ``PTW_CHECKPOINT_KEY``); ``default_dir`` when no URL is set."""
    key = None
    if environ.get(KEY_ENV):
        from ptw.executors.artifacts.crypto import parse_key

        key = parse_key(environ[KEY_ENV])
    url = environ.get(URL_ENV) or Path(default_dir).resolve().as_uri()
    return store_for(url, key, endpoint_url=environ.get(ENDPOINT_ENV) or None)
