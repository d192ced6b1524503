"""Rank-based metrics for one held-out target per user (Recall/HR, NDCG, MRR at K) and coverage."""

from __future__ import annotations

import numpy as np
import torch


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each target in its row, best first.

    Ties are broken by item index (lower first), the same order a stable top-k gives, so a
    constant model cannot look good by luck. A non-finite target score (NaN, +-inf) ranks last:
    a target the model cannot score is a miss, never a hit. Other NaN scores count as -inf.

    scores : (B, n_items) float; excluded items must already be -inf.
    targets : (B,) int.
    """
    rows = np.arange(len(targets))
    t = scores[rows, targets][:, None]
    higher = (scores > t).sum(axis=1)
    ties_before = ((scores == t) & (np.arange(scores.shape[1])[None, :] < targets[:, None])).sum(axis=1)
    ranks = (higher + ties_before).astype(np.int64)
    ranks[~np.isfinite(t[:, 0])] = scores.shape[1] - 1
    return ranks


def rank_metrics(ranks: np.ndarray, ks=(5, 10, 20)) -> dict[str, float]:
    """Mean Recall@K (= HR@K with one target), NDCG@K and MRR@K over users, from 0-based ranks."""
    ranks = np.asarray(ranks)
    out: dict[str, float] = {}
    if len(ranks) == 0:
        return {f"{m}@{k}": float("nan") for k in ks for m in ("recall", "ndcg", "mrr")}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
        out[f"mrr@{k}"] = float(np.where(hit, 1.0 / (ranks + 1.0), 0.0).mean())
    return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(B, k) item indices of the k best scores per row, best first (torch.topk: ~10x numpy's argpartition)."""
    k = min(k, scores.shape[1])
    return torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), k, dim=1).indices.numpy()
