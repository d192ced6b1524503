"""The slates a policy is compared with: greedy top-k by score, and k drawn at random from the top N."""

from __future__ import annotations

import numpy as np

from arborec.diagnostics import NotFittedError, check_param
from arborec.hierarchy import InterestTree
from arborec.policy._slate import Slate


class _ScorePolicy:
    """What both baselines share: ``fit(tree)``, the ranking of the allowed items, no learning."""

    def fit(self, tree: InterestTree):
        check_param("k", self.k, isinstance(self.k, (int, np.integer)) and self.k >= 1, "an integer >= 1")
        self._check_more()
        self.tree_ = tree
        self.rng_ = np.random.default_rng(getattr(self, "seed", 0))
        return self

    def _check_more(self) -> None:
        pass

    def _ranked(self, scores: np.ndarray, exclude=None, candidates=None, n: int | None = None) -> np.ndarray:
        """The ``n`` best-scored allowed items, best first."""
        if not hasattr(self, "tree_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(tree) first")
        scores = np.asarray(scores, dtype=np.float64)[:self.tree_.n_items].copy()
        if candidates is not None:
            keep = np.zeros(len(scores), dtype=bool)
            keep[np.asarray(candidates, dtype=np.int64)] = True
            scores[~keep] = -np.inf
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        n = min(n or self.k, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        return top[np.argsort(-scores[top], kind="stable")][:n]

    def _slate(self, user, items: np.ndarray, prop: float, incl: float, scores) -> Slate:
        items = np.asarray(items, dtype=np.int64)
        return Slate(user=user, items=items, propensities=np.full(len(items), prop),
                     inclusion=np.full(len(items), incl), nodes=self.tree_.codes[items, 0].astype(np.int64),
                     version=self.version_, scores=np.asarray(scores, dtype=np.float64)[items])

    def update(self, user, nodes, rewards) -> None:
        """Nothing is learned from feedback."""

    def observe(self, slate: Slate, rewards) -> None:
        """Nothing is learned from feedback."""


class GreedyPolicy(_ScorePolicy):
    """The k best-scored items, best first (propensity 1)."""

    version_ = "greedy-v1"

    def __init__(self, k: int = 10):
        self.k = k

    def slate(self, user, long, short, scores, exclude=None, candidates=None) -> Slate:
        return self._slate(user, self._ranked(scores, exclude, candidates), 1.0, 1.0, scores)

    def position_probabilities(self, user, long, short, scores, exclude=None, candidates=None, n_draws=None):
        items = self._ranked(scores, exclude, candidates)
        out = np.zeros((self.tree_.n_items, self.k))
        out[items, np.arange(len(items))] = 1.0
        return out


class RandomTopNPolicy(_ScorePolicy):
    """k items drawn without replacement from the N best-scored, in random order.

    Every one of the N items is at each position with probability exactly 1 / N and in the slate
    with probability k / N (closed form).
    """

    def __init__(self, k: int = 10, n: int = 50, seed: int = 0):
        self.k = k
        self.n = n
        self.seed = seed

    def _check_more(self) -> None:
        check_param("n", self.n, isinstance(self.n, (int, np.integer)) and self.n >= self.k, "an integer >= k")
        self.version_ = f"random-top{self.n}-v1"

    def slate(self, user, long, short, scores, exclude=None, candidates=None) -> Slate:
        pool = self._ranked(scores, exclude, candidates, self.n)
        items = self.rng_.permutation(pool)[:self.k]
        return self._slate(user, items, 1.0 / len(pool), len(items) / len(pool), scores)

    def position_probabilities(self, user, long, short, scores, exclude=None, candidates=None, n_draws=None):
        pool = self._ranked(scores, exclude, candidates, self.n)
        out = np.zeros((self.tree_.n_items, self.k))
        out[pool, :min(self.k, len(pool))] = 1.0 / len(pool)
        return out
