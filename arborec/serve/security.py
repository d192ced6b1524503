"""API keys and scopes (stored only as SHA-256 hashes, compared in constant time) and keyed pseudonyms of user ids."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from enum import Enum
from pathlib import Path


class Scope(str, Enum):
    """What a key may do. A key may hold several scopes; none implies another."""

    read = "read"  # per-user reads: interests, recommendations (with their explanations)
    write = "write"  # events and items
    admin = "admin"  # forget and export users, segments with their representative users
    metrics = "metrics"  # GET /metrics


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


class KeyRing:
    """The configured key hashes and their scopes.

    Parameters
    ----------
    hashes : dict scope -> list of SHA-256 hex digests (several per scope: rotation)
    """

    def __init__(self, hashes: dict[Scope, list[str]]):
        pairs: dict[str, set[Scope]] = {}
        for scope, digests in hashes.items():
            for digest in digests:
                pairs.setdefault(digest.lower(), set()).add(Scope(scope))
        self._entries = [(digest.encode(), frozenset(scopes)) for digest, scopes in pairs.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def scopes_of(self, presented: str) -> tuple[frozenset[Scope], str | None]:
        """(scopes, key id) of the presented key: every configured hash is compared (constant time each,
        no early exit); the key id is the first 12 hex digits of its hash (for rate limits and logs)."""
        digest = hash_api_key(presented).encode()
        found: frozenset[Scope] = frozenset()
        for expected, scopes in self._entries:
            if hmac.compare_digest(digest, expected):
                found = scopes
        return found, (digest[:12].decode() if found else None)


class Pseudonymiser:
    """User ids as a keyed hash (HMAC-SHA256 with a server secret): the store alone does not reveal them.

    ``secret=None``: ids are kept as they are.
    """

    def __init__(self, secret: str | bytes | None):
        self._secret = secret.encode() if isinstance(secret, str) else secret

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def __call__(self, user_id: str) -> str:
        if self._secret is None:
            return user_id
        return "p:" + hmac.new(self._secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def write_key_file(path: str | Path) -> str:
    """The hash of the all-scopes key kept in ``path`` (made there, readable by the owner only, when absent).

    The key itself is never printed or logged: the operator reads it from the file.
    """
    path = Path(path)
    if not path.exists():
        key, _ = make_api_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    if path.stat().st_mode & 0o077:
        from arborec.diagnostics import ConfigError

        raise ConfigError(f"{path}: an API key file must be readable by its owner only (chmod 600 {path})")
    return hash_api_key(path.read_text().strip())
