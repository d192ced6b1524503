"""API keys: generated at random, stored only as a SHA-256 hash, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def make_api_key() -> tuple[str, str]:
    """A new random API key and its hash: ``(key, sha256_hex)``. Keep the key; configure the hash."""
    key = secrets.token_urlsafe(32)
    return key, hash_api_key(key)


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of ``key``.

    A plain (unsalted, fast) hash is enough here: the keys are 256-bit random tokens, not passwords,
    so there is nothing to brute-force from the hash, and checking stays in microseconds per request.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(presented: str | None, expected_hash: str | None) -> bool:
    """True when ``presented`` hashes to ``expected_hash``; the comparison takes the same time either way."""
    if not presented or not expected_hash:
        return False
    return hmac.compare_digest(hash_api_key(presented), expected_hash)
