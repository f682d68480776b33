"""Artifacts in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...) through boto3: production's store.

An object appears under its key only once its upload completes: a single PUT is atomic, and boto3's
multipart upload (for large checkpoints) becomes visible only on CompleteMultipartUpload and is aborted
on failure. So the object is written to a local spool file first and uploaded whole, then reported.
Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile,
an instance role).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlparse

from ptw.executors.artifacts.local import checkpoint_path
from ptw.executors.artifacts.store import Artifact, ArtifactStore, ArtifactStoreError, Fill


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")``."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
    return parsed.netloc, parsed.path.strip("/")


class S3Store(ArtifactStore):
    def __init__(
        self, url: str, key: bytes | None = None, *, endpoint_url: str | None = None, client: Any = None
    ) -> None:
        super().__init__(key)
        self.bucket, self.prefix = split_s3_url(url)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url or None,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        self.client = client

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _put(self, name: str, fill: Fill) -> Artifact:
        key = f"{self.prefix}/{name}" if self.prefix else name
        uri = f"s3://{self.bucket}/{key}"
        with tempfile.TemporaryFile(prefix="ptw-checkpoint-") as spool:
            fill(spool)
            size = spool.tell()
            spool.seek(0)
            try:
                self.client.upload_fileobj(spool, self.bucket, key)
            except Exception as exc:  # botocore's ClientError, S3UploadFailedError, connection errors
                raise ArtifactStoreError(f"cannot upload {uri}: {exc}") from exc
        return Artifact(uri, size)

    @contextlib.contextmanager
    def _get(self, uri: str) -> Iterator[IO[bytes]]:
        if not uri.startswith("s3://"):
            # A checkpoint of a worker on a shared filesystem stays readable after a move to a bucket.
            with open(checkpoint_path(uri), "rb") as f:
                yield f
            return
        bucket, key = split_s3_url(uri)
        with tempfile.TemporaryFile(prefix="ptw-checkpoint-") as spool:
            try:
                self.client.download_fileobj(bucket, key, spool)
            except Exception as exc:
                if _status(exc) == 404:
                    raise FileNotFoundError(f"checkpoint {uri} does not exist") from exc
                raise ArtifactStoreError(f"cannot download {uri}: {exc}") from exc
            spool.seek(0)
            yield spool

    def delete(self, uri: str) -> None:
        if not uri.startswith("s3://"):
            checkpoint_path(uri).unlink(missing_ok=True)
            return
        bucket, key = split_s3_url(uri)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)  # S3 answers 204 for a missing key too
        except Exception as exc:
            raise ArtifactStoreError(f"cannot delete {uri}: {exc}") from exc


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return 404 if code in ("404", "NoSuchKey", "NotFound") else None
