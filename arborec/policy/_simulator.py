"""A slate simulator: real users, a trained model's next-item distribution as their taste, planted drift."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arborec.data import Histories
from arborec.diagnostics import ConfigError, check_param, logger
from arborec.hierarchy import InterestTree

INTEREST_MIN_SHARE = 0.1  # a level-1 node with this share of a user's long-term profile is one of their interests


def position_bias(k: int) -> np.ndarray:
    """(k,) examination probability of each position: 1 / log2(position + 1), position 1-based."""
    return 1.0 / np.log2(np.arange(k) + 2.0)


@dataclass
class ClickModel:
    """Users' true taste: click probability ``bias[p] * (1 - exp(-kappa_u * q_u(item)))`` at position p.

    ``taste`` (U, n_items) rows sum to one; ``kappa`` (U,) is set so that the truth-optimal slate
    gets ``target_clicks`` expected clicks. The clicks of the positions of a slate are independent
    (the item-position model the off-policy estimators assume).
    """

    taste: np.ndarray
    kappa: np.ndarray
    bias: np.ndarray

    @classmethod
    def calibrated(cls, taste: np.ndarray, k: int, target_clicks: float) -> "ClickModel":
        bias = position_bias(k)
        top = -np.sort(-taste, axis=1)[:, :k]  # (U, k)
        lo, hi = np.full(len(taste), 1e-3), np.full(len(taste), 1e9)
        for _ in range(80):  # bisection on log kappa
            mid = np.sqrt(lo * hi)
            clicks = (bias[None, :top.shape[1]] * (1 - np.exp(-mid[:, None] * top))).sum(1)
            lo, hi = np.where(clicks < target_clicks, mid, lo), np.where(clicks < target_clicks, hi, mid)
        return cls(taste, np.sqrt(lo * hi), bias)

    def probabilities(self, user: int, items: np.ndarray, taste: np.ndarray | None = None) -> np.ndarray:
        """(n,) click probability of ``items`` shown at positions 0..n-1."""
        q = (self.taste[user] if taste is None else taste)[items]
        return self.bias[:len(items)] * (1 - np.exp(-self.kappa[user] * q))


@dataclass
class SimulationResult:
    """Per user and step: clicks, coverage of the user's level-1 interests, intra-list diversity over the
    tree, share of slots on the planted new interest; and per user the slates from the drift until that
    share first passes one half (NaN: not within the run)."""

    policy: str
    clicks: np.ndarray  # (U, T)
    coverage: np.ndarray  # (U, T)
    diversity: np.ndarray  # (U, T)
    new_share: np.ndarray  # (U, T)
    recovery: np.ndarray  # (U,)
    drift_at: int

    def summary(self) -> dict:
        rec = self.recovery
        horizon = self.clicks.shape[1] - self.drift_at
        return {"policy": self.policy, "users": int(self.clicks.shape[0]), "steps": int(self.clicks.shape[1]),
                "clicks_per_user": float(self.clicks.sum(1).mean()),
                "clicks_before_drift": float(self.clicks[:, :self.drift_at].sum(1).mean()),
                "clicks_after_drift": float(self.clicks[:, self.drift_at:].sum(1).mean()),
                "coverage": float(self.coverage.mean()), "diversity": float(self.diversity.mean()),
                "recovered": float(np.isfinite(rec).mean()),
                "recovery_median": float(np.median(np.where(np.isfinite(rec), rec, horizon + 1))),
                "recovery_mean_censored": float(np.where(np.isfinite(rec), rec, horizon + 1).mean())}


def intra_list_diversity(codes: np.ndarray) -> float:
    """Mean over item pairs of the tree distance 1 - (shared path length) / L; ``codes`` (n, L)."""
    n, levels = codes.shape
    if n < 2:
        return 0.0
    same = np.cumprod(codes[:, None, :] == codes[None, :, :], axis=2).sum(2)  # (n, n) shared prefix length
    iu = np.triu_indices(n, 1)
    return float((1 - same[iu] / levels).mean())


class SlateSimulator:
    """Users of a real dataset served slates step after step by a policy, their taste being a trained model's.

    At the start each user's taste is the model's next-item distribution (softmax of its scores)
    after their real history. At step ``drift_at`` their dominant level-1 interest moves: a level-1
    node other than their strongest (drawn at random among those with at least 2k unseen items)
    takes ``drift_share`` of the taste, the rest keeping the remainder in proportion. At each step
    the policy gets the model's level distributions and scores after the user's history plus the
    items clicked so far, shows k items, the user clicks by the :class:`ClickModel`, the policy gets
    the feedback and the clicked items join the history.

    Parameters
    ----------
    model : has ``score(users, Histories)`` (B, n_items) and ``level_distributions(Histories)``
    tree : InterestTree of the model's items
    histories : Histories, one row per simulated user (their real history)
    k, n_steps, drift_at, drift_share, target_clicks : slate size, steps, the drift, clicks of the
        truth-optimal slate before the drift
    seed : users' clicks and the drift target
    """

    def __init__(self, model, tree: InterestTree, histories: Histories, k: int = 10, n_steps: int = 40,
                 drift_at: int = 10, drift_share: float = 0.8, target_clicks: float = 1.0, seed: int = 0):
        check_param("drift_at", drift_at, 0 <= drift_at < n_steps, f"an integer in [0, n_steps={n_steps})")
        check_param("drift_share", drift_share, 0 < drift_share < 1, "a float in (0, 1)")
        self.model, self.tree, self.histories = model, tree, histories
        self.k, self.n_steps, self.drift_at, self.drift_share = k, n_steps, drift_at, drift_share
        self.seed = seed
        rng = np.random.default_rng(seed)
        users = np.arange(len(histories))
        scores = np.asarray(model.score(users, histories), dtype=np.float64)
        for b in users:
            scores[b, histories.sequence(b)] = -np.inf
        taste = np.exp(scores - scores.max(1, keepdims=True))
        taste /= taste.sum(1, keepdims=True)
        self.click_model = ClickModel.calibrated(taste, k, target_clicks)
        long, _ = model.level_distributions(histories)
        self.interests = [np.flatnonzero(row >= INTEREST_MIN_SHARE) for row in long[0]]
        self.new_node, self.drifted = self._plant_drift(taste, rng)

    def _plant_drift(self, taste: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
        codes = self.tree.codes[:, 0]
        n_nodes = self.tree.level_sizes[0]
        mass = np.stack([np.bincount(codes, weights=row, minlength=n_nodes) for row in taste])  # (U, J)
        unseen = np.stack([np.bincount(codes, weights=(row > 0).astype(float), minlength=n_nodes) for row in taste])
        new = np.empty(len(taste), dtype=np.int64)
        drifted = np.empty_like(taste)
        for u in range(len(taste)):
            options = [j for j in range(n_nodes) if j != mass[u].argmax() and unseen[u, j] >= 2 * self.k]
            if not options:
                raise ConfigError(f"user row {u}: no level-1 node besides the strongest has {2 * self.k} unseen "
                                  "items to drift to (use a tree with more level-1 nodes)")
            new[u] = rng.choice(options)
            inside = codes == new[u]
            drifted[u] = np.where(inside, self.drift_share * taste[u] / mass[u, new[u]],
                                  (1 - self.drift_share) * taste[u] / (1 - mass[u, new[u]]))
        return new, drifted

    def run(self, policy, name: str | None = None) -> SimulationResult:
        """Serve ``policy`` (fitted; ``slate`` and ``update`` as :class:`SlatePolicy`) for ``n_steps``."""
        rng = np.random.default_rng(self.seed + 1)
        n_users, steps = len(self.histories), self.n_steps
        added = [[] for _ in range(n_users)]
        out = {m: np.zeros((n_users, steps)) for m in ("clicks", "coverage", "diversity", "new_share")}
        users = np.arange(n_users)
        for t in range(steps):
            hist = self._current(added)
            scores = self.model.score(users, hist)
            long, short = self.model.level_distributions(hist)
            for u in users:
                seen = hist.sequence(u)
                slate = policy.slate(int(u), [p[u] for p in long], [p[u] for p in short], scores[u], exclude=seen)
                taste = self.click_model.taste[u] if t < self.drift_at else self.drifted[u]
                clicked = rng.random(len(slate.items)) < self.click_model.probabilities(u, slate.items, taste)
                policy.update(int(u), slate.nodes, clicked.astype(float))
                added[u].extend(slate.items[clicked].tolist())
                out["clicks"][u, t] = clicked.sum()
                mine = self.interests[u]
                out["coverage"][u, t] = np.isin(mine, slate.nodes).mean() if len(mine) else np.nan
                out["diversity"][u, t] = intra_list_diversity(self.tree.codes[slate.items])
                out["new_share"][u, t] = (slate.nodes == self.new_node[u]).mean() if len(slate.items) else 0.0
            logger.debug("step %d: %.3f clicks per user", t, out["clicks"][:, t].mean())
        after = out["new_share"][:, self.drift_at:] > 0.5
        recovery = np.where(after.any(1), after.argmax(1) + 1.0, np.nan)  # slates after the drift
        return SimulationResult(name or getattr(policy, "version_", type(policy).__name__), out["clicks"],
                                out["coverage"], out["diversity"], out["new_share"], recovery, self.drift_at)

    def _current(self, added: list[list[int]]) -> Histories:
        """The real histories with each user's clicked items appended (in click order)."""
        h = self.histories
        seqs = [np.concatenate([h.sequence(b), np.asarray(a, dtype=h.items.dtype)]) for b, a in enumerate(added)]
        indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in seqs], out=indptr[1:])
        return Histories(indptr, np.concatenate(seqs).astype(h.items.dtype))
