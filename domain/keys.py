"""API key secrets: ``ptw_<prefix>_<secret>``, looked up by prefix and stored only as a SHA-256 hash.

The secret carries 256 bits of entropy, so a fast hash is safe here (no password stretching needed),
and comparison is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX_BYTES = 6


def new_secret() -> tuple[str, str, str]:
    """A fresh key as (prefix, the full secret shown once, the hash to store)."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = f"ptw_{prefix}_{secrets.token_urlsafe(32)}"
    return prefix, secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def prefix_of(secret: str) -> str | None:
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != "ptw" or len(parts[1]) != PREFIX_BYTES * 2:
        return None
    return parts[1]


def matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)
