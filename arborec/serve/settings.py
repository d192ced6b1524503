"""Service settings (pydantic-settings): store URL, scoped API key hashes, limits, privacy; from ARBOREC_* variables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from arborec.serve.security import Scope

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "password", "test"}


class ServeSettings(BaseSettings):
    """Everything the service reads from its environment (``ARBOREC_<FIELD>``) or the command line."""

    model_config = SettingsConfigDict(env_prefix="ARBOREC_", extra="ignore")

    db_url: str = "sqlite:///arborec-serve.db"
    """SQLAlchemy URL of the store: ``sqlite:///path.db`` (embedded, WAL) or ``postgresql+psycopg://...``."""

    api_key_hash: str | None = None
    """SHA-256 hex digest of an API key with every scope (read, write, admin, metrics); never the key itself."""

    api_keys: dict[Scope, list[str]] = Field(default_factory=dict)
    """Scoped keys: scope -> SHA-256 hex digests of the keys holding it (several per scope, so keys can be
    rotated: add the new hash, move the clients, remove the old one), e.g. ``ARBOREC_API_KEYS='{"read":
    ["<hash>"], "write": ["<hash>", "<hash>"], "admin": ["<hash>"], "metrics": ["<hash>"]}'``."""

    api_keys_file: Path | None = None
    """A JSON file of the same form as ``api_keys`` (merged with it): keys can then change without
    touching the environment (restart to apply)."""

    generated_key_file: Path = Path("arborec-serve.key")
    """``arborec serve`` without any configured key writes an all-scopes key here (mode 600, never printed
    or logged) and reuses it on later starts."""

    public_reads: bool = False
    """Per-user reads (interests, recommendations with explanations) without a key: for demos only (it is
    said in the log at start). Default: they need a key with the ``read`` scope."""

    rate_limit: str = "1000/second"
    """Requests allowed per key (``limits`` notation: "N/second;M/minute"); more are answered 429 with
    Retry-After."""

    anonymous_rate_limit: str = "20/second;600/minute"
    """Requests allowed per client address on routes reachable without a key (GET /segments, and
    per-user reads when ``public_reads``)."""

    user_cache_size: int = Field(100_000, ge=1)
    """Most users whose state is held in memory by each of the service's processes (least recently used
    evicted; reloaded from the store on the next request, with the same answers). With ``events_process``
    there are two: the serving process holds the users it was asked about, the event process those with
    recent events."""

    events_process: bool = True
    """``arborec serve`` stores and applies events in a process of its own (forked from the loaded service,
    `arborec.serve.applier.EventApplier`), so that reads do not wait for event application: p99 of
    recommendations during a saturated stream of 1,000,000 users was 23-26 ms against 59 ms in one process
    (benchmarks/results/serve_memory_1000000.md). False: one process does both (less memory: the child's
    copy-on-write pages and its own user cache). Ignored with an in-memory SQLite store."""

    retention_days: float | None = Field(None, gt=0)
    """Raw events received more than this many days ago are folded into their user's state (kept in the
    users table) and deleted; None: raw events are kept. Checked at start and every ``retention_every_s``."""

    retention_every_s: float = Field(3600.0, gt=0)
    """Seconds between two retention passes."""

    pseudonym_key: SecretStr | None = None
    """A server secret: when set, user ids are stored as HMAC-SHA256(secret, id), so the store alone does not
    reveal them (keep the secret: without it stored users cannot be found again)."""

    sqlite_synchronous: str = "NORMAL"
    """SQLite ``synchronous`` pragma (the store runs in WAL mode). NORMAL: a commit has written the event to
    the WAL file before the answer, so acknowledged events survive any crash or kill of the service
    (tested with SIGKILL); an OS crash or power cut may lose the last commits. FULL also fsyncs every
    commit (survives power loss) for about 4-8 ms more per write on the benchmark machine; see
    benchmarks/results/serve.md."""

    max_body_bytes: int = Field(1_000_000, ge=1_000)
    """Requests with a larger body are refused with 413."""

    max_batch: int = Field(1_000, ge=1)
    """Most events (or items) in one POST."""

    max_k: int = Field(200, ge=1)
    """Largest ``k`` a recommendation request may ask for."""

    short_window: int = Field(10, ge=1)
    """Events that make a user's short-term interest (the most recent ones)."""

    min_share: float = Field(0.01, ge=0.0, le=1.0)
    """Interest nodes holding less than this share of a user's events (or probability) are left out of
    profiles and reasons."""

    max_history: int = Field(200, ge=1)
    """Most recent events kept in a user's in-memory state."""

    segments: Annotated[int, Field(ge=2)] | Literal["auto"] = "auto"
    """Number of user segments (`arborec.profiles.Segmenter`, k-means over the users' level-1 interest
    profiles, fitted at start on the users known then), or "auto": chosen by the silhouette among 4..12."""

    segment_fit_users: int = Field(5000, ge=10)
    """Most users the segments are fitted on (a seeded sample); every user is then assigned to the nearest
    segment. Fitting takes well under a second on 5000 users."""

    segment_seed: int = 0
    """Seed of the segments' sample and k-means (the same data and seed give the same segments)."""

    @field_validator("api_key_hash")
    @classmethod
    def _real_hash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if value in _PLACEHOLDERS or not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("api_key_hash must be the 64-hex-digit SHA-256 of the API key "
                             "(make one with `arborec serve --make-key`), not a placeholder")
        return value

    @field_validator("api_keys")
    @classmethod
    def _real_hashes(cls, value: dict) -> dict:
        return {scope: [_checked_hash(h, f"api_keys.{getattr(scope, 'value', scope)}") for h in hashes]
                for scope, hashes in value.items()}

    @field_validator("pseudonym_key")
    @classmethod
    def _real_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and (value.get_secret_value().strip().lower() in _PLACEHOLDERS
                                  or len(value.get_secret_value()) < 16):
            raise ValueError("pseudonym_key must be a real secret of at least 16 characters, not a placeholder "
                             "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        return value

    @field_validator("rate_limit", "anonymous_rate_limit")
    @classmethod
    def _limits(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '100/second;2000/minute'") from None
        return value

    @model_validator(mode="after")
    def _read_keys_file(self) -> "ServeSettings":
        if self.api_keys_file is None:
            return self
        try:
            loaded = json.loads(Path(self.api_keys_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"api_keys_file {self.api_keys_file}: {exc}") from None
        if not isinstance(loaded, dict) or any(s not in Scope.__members__ for s in loaded):
            raise ValueError(f"api_keys_file {self.api_keys_file}: expected a JSON object "
                             f"{{scope: [sha256 hex, ...]}} with scopes among {', '.join(Scope.__members__)}")
        merged = {Scope(s): list(h) for s, h in self.api_keys.items()}
        for scope, hashes in loaded.items():
            merged.setdefault(Scope(scope), []).extend(_checked_hash(h, f"{self.api_keys_file}: {scope}")
                                                       for h in hashes)
        self.api_keys = merged
        self.api_keys_file = None  # read once
        return self

    def key_hashes(self) -> dict[Scope, list[str]]:
        """Every configured key hash by scope (``api_key_hash`` counts in every scope)."""
        out = {scope: list(self.api_keys.get(scope, [])) for scope in Scope}
        if self.api_key_hash is not None:
            for scope in Scope:
                out[scope].append(self.api_key_hash)
        return out

    @property
    def has_keys(self) -> bool:
        return self.api_key_hash is not None or any(self.api_keys.values())

    @field_validator("sqlite_synchronous")
    @classmethod
    def _sync_mode(cls, value: str) -> str:
        value = value.upper()
        if value not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")
        return value


def _checked_hash(value: str, where: str) -> str:
    value = str(value).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError(f"{where}: {value[:8]!r}... is not the 64-hex-digit SHA-256 of an API key (make one "
                         "with `arborec serve --make-key`)")
    return value
