"""Service settings (pydantic-settings): store URL, API key hash, request limits; read from ARBOREC_* variables."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "password", "test"}


class ServeSettings(BaseSettings):
    """Everything the service reads from its environment (``ARBOREC_<FIELD>``) or the command line."""

    model_config = SettingsConfigDict(env_prefix="ARBOREC_", extra="ignore")

    db_url: str = "sqlite:///arborec-serve.db"
    """SQLAlchemy URL of the store: ``sqlite:///path.db`` (embedded, WAL) or ``postgresql+psycopg://...``."""

    api_key_hash: str | None = None
    """SHA-256 hex digest of the API key that writes and admin endpoints require (never the key itself)."""

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

    @field_validator("sqlite_synchronous")
    @classmethod
    def _sync_mode(cls, value: str) -> str:
        value = value.upper()
        if value not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA")
        return value
