"""Behaviour fine-tuning: a residual adapter on frozen text vectors, trained on items that co-occur in training sequences."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from arborec.data import Split
from arborec.progress import EpochProgress


@dataclass
class AdapterConfig:
    hidden: int = 512  # width of the adapter's hidden layer
    window: int = 3  # items up to this many steps apart in a training sequence form a positive pair
    temperature: float = 0.05  # InfoNCE temperature over in-batch negatives
    epochs: int = 5
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


class ResidualAdapter(nn.Module):
    """v -> normalize(v + W2 gelu(W1 v)); starts as the identity (W2 = 0), so it can only learn what helps."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, D)
        return nn.functional.normalize(v + self.down(nn.functional.gelu(self.up(v))), dim=-1)


def cooccurrence_pairs(split: Split, window: int) -> np.ndarray:
    """(P, 2) int64 pairs of distinct items at most ``window`` apart in a user's TRAINING sequence."""
    items, indptr = split.train_items.astype(np.int64), split.train_indptr
    user_of = np.repeat(np.arange(split.n_users), np.diff(indptr))
    pairs = []
    for gap in range(1, window + 1):
        same_user = user_of[gap:] == user_of[:-gap]
        a, b = items[:-gap][same_user], items[gap:][same_user]
        keep = a != b
        pairs.append(np.stack([a[keep], b[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)


def fit_adapter(vectors: np.ndarray, split: Split, config: AdapterConfig | None = None,
                progress: bool = False, on_epoch=None) -> tuple[ResidualAdapter, list[float]]:
    """Train a :class:`ResidualAdapter` with symmetric InfoNCE on co-occurring item pairs.

    Only training sequences are read (never validation or test targets). ``on_epoch(adapter,
    epoch)``, when given, is called after every epoch (1-based), e.g. to select an epoch on
    validation; a float it returns is shown as that epoch's validation NDCG@10 in the progress line
    (one per epoch, see :class:`arborec.progress.EpochProgress`). Returns the adapter after the last epoch and the mean loss of each epoch.
    """
    config = config or AdapterConfig()
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    v = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    pairs = torch.from_numpy(cooccurrence_pairs(split, config.window))
    adapter = ResidualAdapter(v.shape[1], config.hidden)
    opt = torch.optim.AdamW(adapter.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    losses = []
    report = EpochProgress("text adapter", config.epochs)
    for _ in tqdm(range(config.epochs), desc="adapter", disable=not progress, leave=False):
        t0 = time.perf_counter()
        order = torch.randperm(len(pairs), generator=gen)
        total, steps = 0.0, 0
        for start in range(0, len(pairs), config.batch_size):
            batch = pairs[order[start:start + config.batch_size]]
            a, b = adapter(v[batch[:, 0]]), adapter(v[batch[:, 1]])  # (B, D) each
            logits = a @ b.T / config.temperature  # (B, B): the diagonal holds the positives
            # Duplicate items in a batch are false negatives: mask them out.
            same = (batch[:, 1][None, :] == batch[:, 1][:, None]) & ~torch.eye(len(batch), dtype=torch.bool)
            logits = logits.masked_fill(same, float("-inf"))
            target = torch.arange(len(batch))
            loss = 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
        losses.append(total / max(steps, 1))
        valid = None
        if on_epoch is not None:
            valid = on_epoch(adapter.eval(), len(losses))
            adapter.train()
        report.epoch_end(len(losses), losses[-1], time.perf_counter() - t0,
                         valid if isinstance(valid, float) else None)
    return adapter.eval(), losses


def apply_adapter(adapter: ResidualAdapter, vectors: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return adapter(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))).numpy()
