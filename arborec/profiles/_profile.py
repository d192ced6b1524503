"""User interest profiles: per-level long-term, short-term and combined distributions over the tree's nodes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from arborec.data import Histories
from arborec.diagnostics import ConfigError, NotFittedError, check_param
from arborec.hierarchy import InterestTree

TIME_UNITS = {"events": None, "seconds": 1.0, "hours": 3600.0, "days": 86400.0}
# The one definition of long and short term, shared by the profiles, the report, the demo and the service
# (`arborec.serve` counts the same way: every event for the long term, the last SHORT_WINDOW for the short term).
HALF_LIFE = float("inf")  # long term: all the user's events, equally weighted
SHORT_WINDOW = 10  # short term: the user's last 10 events, equally weighted


@dataclass
class Interest:
    """One node of a user's profile, with what it means.

    ``path`` holds the labels from level 1 down to this node; ``items`` are representative items of
    the user's history under the node (medoids under the item vectors, else the most recent).
    """

    level: int  # 1-based
    node: int
    path: list[str]
    long: float
    short: float
    combined: float
    items: list[int] = field(default_factory=list)


@dataclass
class UserProfile:
    """A user's interests at every level of an :class:`InterestTree`.

    Attributes
    ----------
    long, short, combined : list of L float arrays (n_nodes_l,)
        Distributions over each level's nodes (each sums to one): long-term (the whole history,
        decayed with recency), short-term (the last events), and ``long_weight * long +
        (1 - long_weight) * short``.
    level_weights : (L,) float array summing to one
        Weight of each level in :meth:`flat`, the combined profile over all nodes of all levels.
    long_weight : float
        Weight of the long-term distribution in ``combined``.
    history : list of int
        The user's items, oldest first (what explanations point to).
    interests : list of Interest
        The strongest nodes, ordered by ``level_weights[l] * combined[l][node]``, each with its
        representative items.
    labels : list of L lists of str
        Node labels (a copy of the tree's), so a profile read back from JSON is self-describing.
    parents : list of L int arrays
        Parent index of each node (as in the tree).
    user : int or str or None
    """

    long: list[np.ndarray]
    short: list[np.ndarray]
    combined: list[np.ndarray]
    level_weights: np.ndarray
    long_weight: float
    history: list[int]
    interests: list[Interest]
    labels: list[list[str]]
    parents: list[np.ndarray]
    user: int | str | None = None

    @property
    def n_levels(self) -> int:
        return len(self.long)

    def flat(self) -> np.ndarray:
        """(sum n_nodes_l,) the combined profile over all nodes of all levels: sums to one."""
        return np.concatenate([w * c for w, c in zip(self.level_weights, self.combined)])

    def path_labels(self, level: int, node: int) -> list[str]:
        """Labels from level 1 down to ``node`` at ``level`` (1-based)."""
        out = []
        for lv in range(level - 1, -1, -1):
            out.append(self.labels[lv][node])
            node = int(self.parents[lv][node])
        return out[::-1]

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_distributions(cls, tree: InterestTree, long, short, *, long_weight: float = 0.5,
                           level_weights=None, history=(), vectors: np.ndarray | None = None,
                           n_interests: int = 8, n_items: int = 3, user=None) -> "UserProfile":
        """A profile from given per-level distributions (e.g. a model's predicted ``long[l]``, ``short[l]``).

        Each ``long[l]``/``short[l]`` is a (n_nodes_l,) non-negative array; it is normalised to sum
        to one (an all-zero level becomes uniform). ``history`` (item indices, oldest first) gives
        the representative items and the explanations.
        """
        check_param("long_weight", long_weight, 0.0 <= long_weight <= 1.0, "a number in [0, 1]")
        sizes = tree.level_sizes
        if len(long) != len(sizes) or len(short) != len(sizes):
            raise ConfigError(f"the tree has {len(sizes)} levels but {len(long)} long and {len(short)} short "
                              "distributions were given")
        long = [_normalise(np.asarray(d, dtype=np.float64), n, f"long[{i}]")
                for i, (d, n) in enumerate(zip(long, sizes))]
        short = [_normalise(np.asarray(d, dtype=np.float64), n, f"short[{i}]")
                 for i, (d, n) in enumerate(zip(short, sizes))]
        combined = [long_weight * a + (1.0 - long_weight) * b for a, b in zip(long, short)]
        weights = _level_weights(level_weights, len(sizes))
        history = [int(i) for i in history]
        interests = _top_interests(tree, long, short, combined, weights, np.asarray(history, dtype=np.int64),
                                   vectors, n_interests, n_items)
        return cls(long=long, short=short, combined=combined, level_weights=weights, long_weight=float(long_weight),
                   history=history, interests=interests, labels=[list(x) for x in tree.labels],
                   parents=[p.copy() for p in tree.parents], user=user)

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-able dict (only str, int, float, list, dict).

        Layout::

            {"user": ..., "long_weight": 0.5, "level_weights": [...], "history": [item, ...],
             "levels": [{"level": 1, "nodes": [{"node": 3, "label": "Makeup", "parent": 0,
                                                "long": 0.6, "short": 0.2, "combined": 0.4}, ...]}, ...],
             "interests": [{"level": 2, "node": 7, "path": ["Makeup", "Eyes"], "long": ..., "short": ...,
                            "combined": ..., "items": [item, ...]}, ...],
             "n_nodes": [n_1, ..., n_L]}

        Only nodes with a non-zero long or short weight are listed; a sunburst can be drawn from
        ``levels`` alone (``parent`` is the node's index at the level above, 0 = the root).
        """
        levels = []
        for lv in range(self.n_levels):
            nz = np.flatnonzero((self.long[lv] > 0) | (self.short[lv] > 0))
            levels.append({"level": lv + 1, "nodes": [
                {"node": int(j), "label": self.labels[lv][j], "parent": int(self.parents[lv][j]),
                 "long": float(self.long[lv][j]), "short": float(self.short[lv][j]),
                 "combined": float(self.combined[lv][j])} for j in nz]})
        return {"user": _plain(self.user), "long_weight": self.long_weight,
                "level_weights": [float(w) for w in self.level_weights], "history": list(self.history),
                "levels": levels, "interests": [_interest_dict(i) for i in self.interests],
                "n_nodes": [len(p) for p in self.parents]}

    @classmethod
    def from_dict(cls, d: dict) -> "UserProfile":
        """The inverse of :meth:`to_dict` (labels of unlisted nodes are empty strings)."""
        sizes = d["n_nodes"]
        long = [np.zeros(n) for n in sizes]
        short = [np.zeros(n) for n in sizes]
        combined = [np.zeros(n) for n in sizes]
        labels = [[""] * n for n in sizes]
        parents = [np.zeros(n, dtype=np.int64) for n in sizes]
        for lv, level in enumerate(d["levels"]):
            for node in level["nodes"]:
                j = node["node"]
                long[lv][j], short[lv][j], combined[lv][j] = node["long"], node["short"], node["combined"]
                labels[lv][j], parents[lv][j] = node["label"], node["parent"]
        interests = [Interest(**i) for i in d["interests"]]
        return cls(long=long, short=short, combined=combined, level_weights=np.asarray(d["level_weights"]),
                   long_weight=d["long_weight"], history=list(d["history"]), interests=interests, labels=labels,
                   parents=parents, user=d["user"])


@dataclass
class ProfileBatch:
    """Profiles of many users as sparse matrices, one (B, n_nodes_l) CSR per level and time scale.

    Rows sum to one. :meth:`profile` turns row ``b`` into a :class:`UserProfile`. Made by
    :meth:`ProfileBuilder.transform` (counting histories) or :meth:`from_distributions` (a model's
    predicted distributions); :class:`Segmenter` takes either.
    """

    long: list[sp.csr_matrix]
    short: list[sp.csr_matrix]
    long_weight: float
    level_weights: np.ndarray
    histories: Histories
    users: np.ndarray | None
    tree: InterestTree

    def __len__(self) -> int:
        return len(self.histories)

    @classmethod
    def from_distributions(cls, tree: InterestTree, long, short, histories: Histories, *, long_weight: float = 0.5,
                           level_weights=None, users=None) -> "ProfileBatch":
        """A batch from given (B, n_nodes_l) distributions per level, e.g. a model's
        ``level_distributions(histories)``; rows are normalised (an all-zero row becomes uniform)."""
        check_param("long_weight", long_weight, 0.0 <= long_weight <= 1.0, "a number in [0, 1]")
        B, sizes = len(histories), tree.level_sizes
        mats = []
        for name, dists in (("long", long), ("short", short)):
            if len(dists) != len(sizes):
                raise ConfigError(f"the tree has {len(sizes)} levels but {len(dists)} {name} distributions were given")
            level_mats = []
            for lv, (d, n) in enumerate(zip(dists, sizes)):
                d = np.asarray(d, dtype=np.float64)
                if d.shape != (B, n) or np.any(d < 0) or not np.all(np.isfinite(d)):
                    raise ConfigError(f"{name}[{lv}] must be ({B}, {n}) non-negative and finite, got {d.shape}")
                level_mats.append(_row_normalise(sp.csr_matrix(d), np.full(n, 1.0 / n)))
            mats.append(level_mats)
        return cls(long=mats[0], short=mats[1], long_weight=float(long_weight),
                   level_weights=_level_weights(level_weights, len(sizes)), histories=histories,
                   users=None if users is None else np.asarray(users), tree=tree)

    def rows(self, index: np.ndarray) -> "ProfileBatch":
        """The profiles of rows ``index`` (an int array), as a new batch."""
        index = np.asarray(index, dtype=np.int64)
        seqs = [self.histories.sequence(int(b)) for b in index]
        indptr = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum([len(q) for q in seqs], out=indptr[1:])
        items = np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, dtype=np.int32)
        return ProfileBatch(long=[m[index] for m in self.long], short=[m[index] for m in self.short],
                            long_weight=self.long_weight, level_weights=self.level_weights,
                            histories=Histories(indptr, items), users=None if self.users is None else self.users[index],
                            tree=self.tree)

    @property
    def combined(self) -> list[sp.csr_matrix]:
        return [(self.long_weight * a + (1.0 - self.long_weight) * b).tocsr() for a, b in zip(self.long, self.short)]

    def flat(self) -> sp.csr_matrix:
        """(B, sum n_nodes_l) the combined profiles over all nodes of all levels (rows sum to one)."""
        return sp.hstack([w * c for w, c in zip(self.level_weights, self.combined)]).tocsr()

    def profile(self, b: int, vectors: np.ndarray | None = None, n_interests: int = 8,
                n_items: int = 3) -> UserProfile:
        """Row ``b`` as a :class:`UserProfile`, with representative items (medoids under ``vectors``)."""
        long = [m[b].toarray().ravel() for m in self.long]
        short = [m[b].toarray().ravel() for m in self.short]
        user = None if self.users is None else _plain(self.users[b])
        return UserProfile.from_distributions(self.tree, long, short, long_weight=self.long_weight,
                                              level_weights=self.level_weights, history=self.histories.sequence(b),
                                              vectors=vectors, n_interests=n_interests, n_items=n_items, user=user)


class ProfileBuilder:
    """Count a user's history into per-level interest distributions over an :class:`InterestTree`.

    Parameters
    ----------
    tree : InterestTree
    half_life : float, default ``HALF_LIFE`` (inf)
        Long-term weight of an event halves every ``half_life`` events (or ``time_unit``s) back from
        the user's latest event. ``inf`` (the shared definition) weighs the whole history equally.
    short_window : int, default ``SHORT_WINDOW`` (10)
        Short-term interest: the last ``short_window`` events, equally weighted.
    long_weight : float, default 0.5
        ``combined = long_weight * long + (1 - long_weight) * short`` at every level.
    level_weights : sequence of L floats or None
        Weights of the levels in the flat combined profile (normalised to sum to one); None: equal.
    time_unit : {"events", "seconds", "hours", "days"}, default "events"
        What ``half_life`` counts. Anything but "events" needs ``times`` in :meth:`transform`.
    prior_strength : float, default 0.0
        Pseudo-events of the population distribution added to every long-term profile (smoothing).

    Attributes
    ----------
    prior_ : list of L float arrays (n_nodes_l,)
        The population's distribution at each level (from :meth:`fit`); the profile of a user with
        no history.
    level_weights_ : (L,) float array
    """

    def __init__(self, tree: InterestTree, half_life: float = HALF_LIFE, short_window: int = SHORT_WINDOW,
                 long_weight: float = 0.5,
                 level_weights=None, time_unit: str = "events", prior_strength: float = 0.0):
        self.tree = tree
        self.half_life = half_life
        self.short_window = short_window
        self.long_weight = long_weight
        self.level_weights = level_weights
        self.time_unit = time_unit
        self.prior_strength = prior_strength

    def _validate(self) -> None:
        check_param("half_life", self.half_life, self.half_life > 0, "a number > 0 (inf: no decay)")
        check_param("short_window", self.short_window, int(self.short_window) >= 1, "an integer >= 1")
        check_param("long_weight", self.long_weight, 0.0 <= self.long_weight <= 1.0, "a number in [0, 1]")
        check_param("time_unit", self.time_unit, self.time_unit in TIME_UNITS, f"one of {sorted(TIME_UNITS)}")
        check_param("prior_strength", self.prior_strength, self.prior_strength >= 0, "a number >= 0")

    def fit(self, histories: Histories) -> "ProfileBuilder":
        """Learn the population distribution per level from ``histories`` (all their events)."""
        self._validate()
        self.level_weights_ = _level_weights(self.level_weights, self.tree.n_levels)
        self.prior_ = []
        for lv, n in enumerate(self.tree.level_sizes):
            counts = np.bincount(self.tree.codes[histories.items, lv], minlength=n).astype(np.float64)
            self.prior_.append(counts / counts.sum() if counts.sum() > 0 else np.full(n, 1.0 / n))
        return self

    def transform(self, histories: Histories, users=None, times: np.ndarray | None = None) -> ProfileBatch:
        """Profiles of every history of the batch (vectorised over users).

        ``times`` (nnz,) are the events' timestamps aligned with ``histories.items``, needed when
        ``time_unit`` is not "events". ``users`` (B,) names the rows (ids kept in the profiles).
        """
        if not hasattr(self, "prior_"):
            raise NotFittedError("ProfileBuilder.transform called before fit")
        B, nnz = len(histories), len(histories.items)
        lengths = histories.lengths()
        row = np.repeat(np.arange(B), lengths)
        pos = np.arange(nnz) - np.repeat(histories.indptr[:-1], lengths)  # 0 = oldest
        back = np.repeat(lengths, lengths) - 1 - pos  # events after this one in the user's history
        if self.time_unit == "events":
            age = back.astype(np.float64)
        else:
            if times is None or len(times) != nnz:
                raise ConfigError(f"time_unit={self.time_unit!r} needs times aligned with histories.items "
                                  f"({nnz} values), got {None if times is None else len(times)}")
            times = np.asarray(times, dtype=np.float64)
            last = np.zeros(B)
            has = lengths > 0
            last[has] = times[histories.indptr[1:][has] - 1]
            age = np.maximum(np.repeat(last, lengths) - times, 0.0) / TIME_UNITS[self.time_unit]
        w_long = np.power(0.5, age / self.half_life) if np.isfinite(self.half_life) else np.ones(nnz)
        w_short = (back < int(self.short_window)).astype(np.float64)
        long, short = [], []
        for lv, n in enumerate(self.tree.level_sizes):
            nodes = self.tree.codes[histories.items, lv]
            lm = sp.csr_matrix((w_long, (row, nodes)), shape=(B, n))
            sm = sp.csr_matrix((w_short, (row, nodes)), shape=(B, n))
            if self.prior_strength > 0:
                lm = lm + sp.csr_matrix(np.outer(np.full(B, self.prior_strength), self.prior_[lv]))
            long.append(_row_normalise(lm, self.prior_[lv]))
            short.append(_row_normalise(sm, self.prior_[lv]))
        users = None if users is None else np.asarray(users)
        return ProfileBatch(long=long, short=short, long_weight=float(self.long_weight),
                            level_weights=self.level_weights_, histories=histories, users=users, tree=self.tree)

    def fit_transform(self, histories: Histories, users=None, times=None) -> ProfileBatch:
        return self.fit(histories).transform(histories, users=users, times=times)


# -- helpers --------------------------------------------------------------------------------
def _row_normalise(m: sp.csr_matrix, fallback: np.ndarray) -> sp.csr_matrix:
    """Rows divided by their sums; empty rows become ``fallback``."""
    m = sp.csr_matrix(m, dtype=np.float64, copy=True)
    m.sum_duplicates()
    sums = np.asarray(m.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    m.data *= np.repeat(scale, np.diff(m.indptr))  # in place: a diagonal matrix product costs ~0.7 ms a call
    empty = np.flatnonzero(sums <= 0)
    if len(empty):
        fill = sp.csr_matrix((np.tile(fallback, len(empty)),
                              (np.repeat(empty, len(fallback)), np.tile(np.arange(len(fallback)), len(empty)))),
                             shape=m.shape)
        m = m + fill
        m.eliminate_zeros()
    return m.tocsr()


def _normalise(d: np.ndarray, n: int, name: str) -> np.ndarray:
    if d.shape != (n,):
        raise ConfigError(f"{name} has shape {d.shape}, expected ({n},) (the level's number of nodes)")
    if np.any(d < 0) or not np.all(np.isfinite(d)):
        raise ConfigError(f"{name} has negative or non-finite weights")
    s = d.sum()
    return d / s if s > 0 else np.full(n, 1.0 / n)


def _level_weights(weights, n_levels: int) -> np.ndarray:
    if weights is None:
        return np.full(n_levels, 1.0 / n_levels)
    w = np.asarray(weights, dtype=np.float64)
    check_param("level_weights", weights, w.shape == (n_levels,) and np.all(w >= 0) and w.sum() > 0,
                f"{n_levels} non-negative numbers, not all zero")
    return w / w.sum()


def _top_interests(tree: InterestTree, long, short, combined, level_weights, history: np.ndarray,
                   vectors: np.ndarray | None, n_interests: int, n_items: int) -> list[Interest]:
    """The strongest (level, node) pairs by ``level_weight * combined``, with representative items."""
    scores = [(float(level_weights[lv] * combined[lv][j]), lv, int(j))
              for lv in range(len(combined)) for j in np.flatnonzero(combined[lv] > 0)]
    scores.sort(key=lambda s: (-s[0], s[1], s[2]))  # ties: coarser level, then lower index (stable)
    out = []
    for _, lv, j in scores[:n_interests]:
        mine = history[tree.codes[history, lv] == j] if len(history) else history
        out.append(Interest(level=lv + 1, node=j, path=_path_of(tree, lv, j), long=float(long[lv][j]),
                            short=float(short[lv][j]),
                            combined=float(combined[lv][j]), items=representative_items(mine, vectors, n_items)))
    return out


def _path_of(tree: InterestTree, lv: int, node: int) -> list[str]:
    out = []
    for level in range(lv, -1, -1):
        out.append(tree.labels[level][node])
        node = int(tree.parents[level][node])
    return out[::-1]


def representative_items(items: np.ndarray, vectors: np.ndarray | None, k: int = 3) -> list[int]:
    """Up to ``k`` distinct items among ``items`` (oldest first) that stand for them best.

    With ``vectors`` (n_items, d): the medoids, i.e. the items with the largest summed cosine
    similarity to the others (ties: the more recent). Without: the most recent items.
    """
    uniq, first_back = [], set()
    for i in items[::-1]:  # most recent first, duplicates dropped
        if int(i) not in first_back:
            first_back.add(int(i))
            uniq.append(int(i))
    if vectors is None or len(uniq) <= k:
        return uniq[:k]
    x = np.asarray(vectors[uniq], dtype=np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    centrality = (x @ x.T).sum(axis=1)
    order = np.lexsort((np.arange(len(uniq)), -np.round(centrality, 9)))  # ties: more recent first
    return [uniq[i] for i in order[:k]]


def _interest_dict(i: Interest) -> dict:
    return {"level": i.level, "node": i.node, "path": list(i.path), "long": i.long, "short": i.short,
            "combined": i.combined, "items": [int(x) for x in i.items]}


def _plain(x):
    return x.item() if hasattr(x, "item") else x
