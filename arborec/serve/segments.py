"""User segments of the service: an `arborec.profiles.Segmenter` fitted at start, users assigned as they change."""

from __future__ import annotations

from typing import Callable

import numpy as np

from arborec.data import Histories
from arborec.diagnostics import logger
from arborec.hierarchy import InterestTree
from arborec.profiles import ProfileBatch, Segmenter, UserProfile
from arborec.serve.retrieval import top_k_dense

LONG_WEIGHT = 0.5  # a profile's combined distribution: LONG_WEIGHT * long term + the rest * short term
K_RANGE = (4, 12)  # what n_segments="auto" compares (as `arborec report`: 2 or 3 segments say little)
LEVELS = [1]  # clustered on the level-1 distributions (the best separated); names read every level
N_INIT = 4  # k-means restarts
SELECT_SAMPLE = 2000  # users on which "auto" compares the values of k (and computes silhouettes)
CHUNK = 4096  # users profiled at once when everyone is assigned at start

Interests = dict[str, list[np.ndarray]]  # {"long": [...], "short": [...]}, one weight array per level


def user_profile(tree: InterestTree, interests: Interests, user=None) -> UserProfile:
    """A user's `UserProfile` from the service's interests (per-level weights, long and short term, any scale)."""
    return UserProfile.from_distributions(tree, interests["long"], interests["short"], long_weight=LONG_WEIGHT,
                                          user=user)


class ServedSegments:
    """The service's user segments: a `Segmenter` fitted once, at start (:meth:`fit`); each user, known or
    new, is in the segment ``Segmenter.predict`` gives for their current profile (:meth:`assign`, :meth:`place`).

    Parameters
    ----------
    tree : InterestTree (the served catalogue's)
    n_segments : int or "auto" (chosen by the silhouette in ``K_RANGE``)
    fit_users : most users the segmenter is fitted on (a sample drawn with ``seed``)
    seed : int

    Attributes
    ----------
    segmenter : the fitted Segmenter, or None when too few users had events at start
    n_fitted : users it was fitted on
    sizes : (k,) users in each segment now
    item_counts : (k, n_items) events on each item by the segment's users (counted in the segment the
        user was in when the event was counted: at start, or on arrival)
    """

    def __init__(self, tree: InterestTree, n_segments="auto", fit_users: int = 5000, seed: int = 0):
        self.tree = tree
        self.n_segments_wanted = n_segments
        self.fit_users = int(fit_users)
        self.seed = int(seed)
        self.segmenter: Segmenter | None = None
        self.n_fitted = 0
        self.sizes = np.zeros(0, dtype=np.int64)
        self.item_counts = np.zeros((0, 0), dtype=np.int64)
        self._of: dict[str, int] = {}
        self._forgotten: set[str] = set()  # users deleted since the segments were fitted (not shown)

    @property
    def n_segments(self) -> int:
        return 0 if self.segmenter is None else int(self.segmenter.n_segments_)

    @property
    def n_users(self) -> int:
        """Users in a segment (every user with events, once segments are fitted)."""
        return int(self.sizes.sum())

    def segment_of(self, user_id: str) -> int | None:
        """The segment of a user assigned at start (later users' segments are kept with their state)."""
        return self._of.get(user_id)

    # -- fitting ----------------------------------------------------------------------------------
    def enough(self, n_users: int) -> bool:
        """Whether ``n_users`` users are enough to fit the segments."""
        needed = K_RANGE[0] if self.n_segments_wanted == "auto" else int(self.n_segments_wanted)
        return n_users > max(needed, 2)

    def fit(self, users: list[str], histories: list[np.ndarray],
            interests_of: Callable[[Histories], Interests]) -> "ServedSegments":
        """Fit the segmenter on (a seeded sample of) ``users``; too few users: no segments (a warning).

        ``histories[b]``: user b's item indices, oldest first (none empty); ``interests_of(Histories)``
        gives their interests, one (B, n_nodes_l) array per level and term.
        """
        if not self.enough(len(users)):
            logger.warning("segments: %d users with events are too few for %s segments; none fitted (they are "
                           "fitted at start: restart once there are more users)", len(users), self.n_segments_wanted)
            return self
        n = len(users)
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(n, self.fit_users, replace=False)) if n > self.fit_users else np.arange(n)
        segmenter = Segmenter(method="kmeans", n_segments=self.n_segments_wanted, k_range=K_RANGE, seed=self.seed,
                              n_init=N_INIT, select_sample=SELECT_SAMPLE, silhouette_sample=SELECT_SAMPLE,
                              levels=[lv for lv in LEVELS if lv <= self.tree.n_levels])
        self.segmenter = segmenter.fit(self._batch(np.asarray(users, dtype=object), histories, rows, interests_of))
        self.n_fitted = len(rows)
        return self

    def assign(self, users: list[str], histories: list[np.ndarray], interests_of: Callable[[Histories], Interests],
               n_items: int) -> "ServedSegments":
        """Put every one of ``users`` (``histories`` as in :meth:`fit`) in the segment ``predict`` gives, and
        count their events per segment and item."""
        self._of = {}
        if self.segmenter is None:
            self.sizes, self.item_counts = np.zeros(0, dtype=np.int64), np.zeros((0, n_items), dtype=np.int64)
            return self
        ids = np.asarray(users, dtype=object)
        labels = np.zeros(len(users), dtype=np.int64)
        for start in range(0, len(users), CHUNK):
            chunk = np.arange(start, min(start + CHUNK, len(users)))
            labels[chunk] = self.segmenter.predict(self._batch(ids, histories, chunk, interests_of))
        k = self.n_segments
        self._of = dict(zip(users, labels.tolist()))
        self.sizes = np.bincount(labels, minlength=k).astype(np.int64)
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        items = np.concatenate(histories).astype(np.int64) if histories else np.zeros(0, dtype=np.int64)
        cells = np.repeat(labels, lengths) * n_items + items
        self.item_counts = np.bincount(cells, minlength=k * n_items).reshape(k, n_items).astype(np.int64)
        return self

    def _batch(self, ids: np.ndarray, histories: list[np.ndarray], rows: np.ndarray,
               interests_of: Callable[[Histories], Interests]) -> ProfileBatch:
        chosen = [histories[r] for r in rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([len(h) for h in chosen], out=indptr[1:])
        batch = Histories(indptr, np.concatenate(chosen).astype(np.int32))
        interests = interests_of(batch)
        return ProfileBatch.from_distributions(self.tree, interests["long"], interests["short"], batch,
                                               long_weight=LONG_WEIGHT, users=ids[rows])

    # -- users ------------------------------------------------------------------------------------
    def predict(self, interests: Interests | None, user=None) -> int | None:
        """The segment of a user with these interests (deterministic); None without segments or interests."""
        return self.predict_many([interests], [user])[0]

    def predict_many(self, interests: list[Interests | None], users: list | None = None) -> list[int | None]:
        """:meth:`predict` for several users at once (one ``Segmenter.predict`` call on a `ProfileBatch`)."""
        out: list[int | None] = [None] * len(interests)
        rows = [b for b, i in enumerate(interests) if i is not None]
        if self.segmenter is None or not rows:
            return out
        levels = range(self.tree.n_levels)
        long = [np.stack([interests[b]["long"][lv] for b in rows]) for lv in levels]  # (B, n_nodes_l) each
        short = [np.stack([interests[b]["short"][lv] for b in rows]) for lv in levels]
        empty = Histories(np.zeros(len(rows) + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))
        batch = ProfileBatch.from_distributions(self.tree, long, short, empty, long_weight=LONG_WEIGHT)
        for b, segment in zip(rows, self.segmenter.predict(batch)):
            out[b] = int(segment)
        return out

    def place(self, user_id: str, segment: int | None, items: np.ndarray | None = None,
              before: int | None = None) -> None:
        """Record ``user_id`` in ``segment`` (moved out of the one it was counted in) and count its new events
        on ``items``. Users assigned at start are tracked here by id; for the others (so that memory does not
        grow with every new user) the caller gives ``before``, the segment they were counted in, or None."""
        if segment is None:
            return
        if user_id in self._of:
            before, self._of[user_id] = self._of[user_id], segment
        if before != segment:
            if before is not None:
                self.sizes[before] -= 1
            self.sizes[segment] += 1
        if items is not None and len(items):
            np.add.at(self.item_counts[segment], np.asarray(items, dtype=np.int64), 1)

    def forget(self, user_id: str, items: np.ndarray, segment: int | None = None) -> None:
        """Take a deleted user out of the segment they were counted in (``segment`` for users not assigned
        at start) and its item counts; never show them as a representative."""
        self._forgotten.add(user_id)
        segment = self._of.pop(user_id, segment)
        if segment is None:
            return
        self.sizes[segment] -= 1
        if len(items):
            np.subtract.at(self.item_counts[segment], np.asarray(items, dtype=np.int64), 1)
            np.maximum(self.item_counts[segment], 0, out=self.item_counts[segment])

    def add_items(self, n_new: int) -> None:
        """Room for ``n_new`` items appended to the catalogue (no events yet)."""
        self.item_counts = np.pad(self.item_counts, ((0, 0), (0, n_new)))

    # -- reading ----------------------------------------------------------------------------------
    def popular(self, segment: int, k: int, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, event counts) of the ``k`` items most used by the segment's users (ties, e.g.
        items the segment never used, by overall popularity ``counts``)."""
        own = self.item_counts[segment].astype(np.float64)
        overall = np.asarray(counts[:len(own)], dtype=np.float64)
        ids, _ = top_k_dense(own + overall / (overall.sum() + 1.0), k)  # the tie-break stays below one event
        return ids, own[ids]

    def summary(self) -> dict:
        """How the segments were made (method, k, users fitted on, silhouette)."""
        seg = self.segmenter
        silhouette = None if seg is None or not np.isfinite(seg.silhouette_) else round(float(seg.silhouette_), 4)
        return {"n_users": self.n_users, "n_segments": self.n_segments, "method": "kmeans", "fitted_on": self.n_fitted,
                "silhouette": silhouette, "levels": list(seg.levels) if seg is not None else []}

    def describe(self, segment: int) -> dict:
        """Label, size, top interests and representative users of one segment."""
        seg = self.segmenter
        return {"segment": segment, "label": seg.names_[segment], "n_users": int(self.sizes[segment]),
                "share": round(float(self.sizes[segment] / max(self.n_users, 1)), 4),
                "interests": [{"path": list(p), "level": int(lv), "share": float(sh)}
                              for p, lv, sh in seg.interests_[segment]],
                "representatives": [str(u) for u in seg.representatives_[segment] if str(u) not in self._forgotten]}
