"""The one evaluation protocol: full ranking over the catalogue, history excluded, metrics and slices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from arborec.data import Split
from arborec.evaluate._metrics import rank_metrics, target_ranks, top_k

KS = (5, 10, 20)
COLD_ITEM_MAX_TRAIN = 5  # a test item with at most this many training events is "cold"
SHORT_HISTORY_MAX = 5  # a user with at most this many training events has a "short" history
COLD_SLICE = f"cold_items(<={COLD_ITEM_MAX_TRAIN} train events)"
SCORE_CELLS = 1 << 25  # at most this many (user, item) scores at once: 128 MB of float32 (32 users at 1M items)


def users_per_chunk(n_items: int, batch_size: int = 1024) -> int:
    """Users scored at once: ``batch_size``, capped so a (users, n_items) score block stays <= SCORE_CELLS.

    Every full-ranking loop (evaluation, weight selection, batch scoring) goes through this, so
    memory is bounded by the catalogue size, never by the number of users (1024 users x 1M items
    would be 4 GB per array, and a ranking holds several).
    """
    return max(1, min(batch_size, SCORE_CELLS // max(n_items, 1)))


@dataclass
class Evaluation:
    """What :func:`evaluate` measured at one stage."""

    stage: str
    n_users: int
    metrics: dict[str, float]  # recall@K, ndcg@K, mrr@K, coverage@10
    slices: dict[str, dict]  # slice name -> {"n_users": int, "metrics": {...}}
    ranks: np.ndarray  # (n_users,) 0-based rank of each user's target

    def to_dict(self) -> dict:
        return {"stage": self.stage, "n_users": self.n_users, "metrics": self.metrics, "slices": self.slices}


def evaluate(model, split: Split, stage: str = "test", ks=KS, batch_size: int = 1024,
             users: np.ndarray | None = None, progress: bool = False) -> Evaluation:
    """Rank every item for every evaluated user and measure where the held-out target lands.

    ``model`` is anything with ``score(users, histories) -> (B, n_items) array`` (see
    :class:`arborec.baselines.Recommender`). Items in the user's history are excluded from the
    ranking (score -inf); the history for "test" includes the validation item. Users are scored
    in chunks of :func:`users_per_chunk` (at most ``batch_size``; fewer on large catalogues).
    """
    users = split.eval_users(stage) if users is None else np.asarray(users)
    targets = split.targets(stage, users)
    ranks = np.empty(len(users), dtype=np.int64)
    covered = np.zeros(split.n_items, dtype=bool)
    batch_size = users_per_chunk(split.n_items, batch_size)
    batches = range(0, len(users), batch_size)
    for start in tqdm(batches, desc=f"evaluate {stage}", disable=not progress, leave=False):
        u = users[start:start + batch_size]
        hist = split.histories(stage, u)
        scores = np.array(model.score(u, hist), dtype=np.float32, copy=True)
        if scores.shape != (len(u), split.n_items):
            raise ValueError(f"{type(model).__name__}.score returned shape {scores.shape}, "
                             f"expected {(len(u), split.n_items)}")
        rows = np.repeat(np.arange(len(u)), hist.lengths())
        scores[rows, hist.items] = -np.inf
        ranks[start:start + len(u)] = target_ranks(scores, targets[start:start + batch_size])
        covered[top_k(scores, 10).ravel()] = True

    metrics = rank_metrics(ranks, ks)
    metrics["coverage@10"] = float(covered.mean())
    masks = slice_masks(split, stage, users)
    slices = {name: {"n_users": int(m.sum()), "metrics": rank_metrics(ranks[m], ks)} for name, m in masks.items()}
    return Evaluation(stage=stage, n_users=len(users), metrics=metrics, slices=slices, ranks=ranks)


def slice_masks(split: Split, stage: str = "test", users: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The evaluated users of each slice, as boolean masks over ``users`` (default: the stage's users, in the
    order :func:`evaluate` ranks them): targets with few training events ("cold"), short training histories."""
    users = split.eval_users(stage) if users is None else np.asarray(users)
    targets = split.targets(stage, users)
    return {
        COLD_SLICE: split.item_train_counts()[targets] <= COLD_ITEM_MAX_TRAIN,
        f"short_history(<={SHORT_HISTORY_MAX} train events)": split.train_lengths()[users] <= SHORT_HISTORY_MAX,
    }
