"""Where the recommender contract used to live: `Recommender` is now in :mod:`arborec.base` (kept for old imports)."""

from arborec.base import Recommender

__all__ = ["Recommender"]
