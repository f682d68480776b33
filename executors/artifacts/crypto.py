"""Checkpoint encryption at rest: AES-256-GCM, streamed, with a small authenticated header.

A sealed object is ``MAGIC (4) | VERSION (1) | nonce (12) | ciphertext | tag (16)``. The header is the
associated data, so changing any byte of the object — header, body or tag — fails authentication. A fresh
random nonce per object keeps GCM safe with one key for millions of checkpoints.

The streaming ``Cipher`` API is used rather than the one-shot ``AESGCM``: a checkpoint of several GB is
encrypted as ``torch.save`` writes it, so neither the plaintext on disk nor a second copy in memory exists.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MAGIC = b"PTWC"
VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = len(MAGIC) + 1 + NONCE_SIZE
KEY_SIZE = 32
_CHUNK = 1024 * 1024


class CheckpointSealError(Exception):
    """A checkpoint cannot be decrypted: wrong key, altered bytes, or encryption on one side only."""


def parse_key(text: str) -> bytes:
    """A 256-bit key written as 64 hex digits or as base64 (standard or URL-safe) of 32 bytes."""
    text = text.strip()
    try:
        key = (
            bytes.fromhex(text)
            if len(text) == 2 * KEY_SIZE
            else base64.b64decode(text + "=" * (-len(text) % 4), b"-_")
        )
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != KEY_SIZE:
        raise ValueError(
            "the checkpoint key must be 256 bits: 64 hex digits or base64 of 32 bytes "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return key


def is_sealed(head: bytes) -> bool:
    return head.startswith(MAGIC)


class SealingWriter(io.RawIOBase):
    """A write-only stream that encrypts into ``target``; ``close`` writes the tag. Nothing is sealed
    until it is closed, so a writer abandoned on an error leaves an object that never authenticates."""

    def __init__(self, target: IO[bytes], key: bytes) -> None:
        super().__init__()
        nonce = os.urandom(NONCE_SIZE)
        header = MAGIC + bytes([VERSION]) + nonce
        self._encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        self._encryptor.authenticate_additional_data(header)
        self._target = target
        self._target.write(header)
        self.size = HEADER_SIZE

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        sealed = self._encryptor.update(bytes(data))
        self._target.write(sealed)
        self.size += len(sealed)
        return len(data)

    def finish(self) -> None:
        """Write the tag: the object is complete. Called only when everything was written."""
        tail = self._encryptor.finalize() + self._encryptor.tag
        self._target.write(tail)
        self.size += len(tail)


def open_sealed(source: IO[bytes], key: bytes | None, name: str) -> IO[bytes]:
    """The plaintext of a seekable ``source`` as an in-memory stream, after checking its tag.

    With ``key`` None the object must not be sealed and ``source`` itself is returned."""
    head = source.read(HEADER_SIZE)
    source.seek(0)
    if key is None:
        if is_sealed(head):
            raise CheckpointSealError(
                f"checkpoint {name} is encrypted; set PTW_CHECKPOINT_KEY to the key it was saved with"
            )
        return source
    if not is_sealed(head):
        # Refused rather than read: with a key configured, an unencrypted object may be a substitute.
        raise CheckpointSealError(f"checkpoint {name} is not encrypted, but PTW_CHECKPOINT_KEY is set")
    total = source.seek(0, io.SEEK_END)
    if total < HEADER_SIZE + TAG_SIZE:
        raise CheckpointSealError(f"checkpoint {name} is truncated")
    if head[len(MAGIC)] != VERSION:
        raise CheckpointSealError(f"checkpoint {name} has an unknown encryption format")
    source.seek(total - TAG_SIZE)
    tag = source.read(TAG_SIZE)
    decryptor = Cipher(algorithms.AES(key), modes.GCM(head[len(MAGIC) + 1 :], tag)).decryptor()
    decryptor.authenticate_additional_data(head)
    source.seek(HEADER_SIZE)
    left = total - HEADER_SIZE - TAG_SIZE
    plain = io.BytesIO()
    while left > 0:
        chunk = source.read(min(_CHUNK, left))
        if not chunk:
            raise CheckpointSealError(f"checkpoint {name} is truncated")
        left -= len(chunk)
        plain.write(decryptor.update(chunk))
    try:
        plain.write(decryptor.finalize())
    except InvalidTag:
        raise CheckpointSealError(
            f"checkpoint {name} failed authentication: the key is wrong or the object was altered"
        ) from None
    plain.seek(0)
    return plain
