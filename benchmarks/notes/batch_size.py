"""Seconds per training example of arborec's prefix regime at several batch sizes, in one process.

    ARBOREC_DATA_DIR=../shared/data python benchmarks/notes/batch_size.py amazon-beauty [128 256 512 1024]

Each batch size trains on the same 10,240 examples of one epoch's batch order (the suite's setting: window
50, dropout 0.4, lr 1e-3, one torch thread): forward, backward and the optimizer step, the sizes in rotation
for 5 repeats (so machine noise hits all alike); prints the median time of those examples and its ratio to
the first size's. Training data only: validation and test are never read. Write-up: batch_size.md here.
"""
import sys
import time

import numpy as np
import torch

from _prefix_model import untrained_arborec
from arborec.sequential import adam, batch_order

dataset = sys.argv[1]
sizes = [int(b) for b in sys.argv[2:]] or [128, 256, 512, 1024]
model, x, y, lengths = untrained_arborec(dataset)
opt = adam(model.module_.parameters(), 1e-3, 0.0, torch.device("cpu"))
order = np.concatenate(batch_order(lengths, 128, np.random.default_rng(0)))[:10_240]  # one epoch's examples


def train_on(batch: int) -> float:
    t0 = time.perf_counter()
    for idx in batch_order(lengths[order], batch, np.random.default_rng(1)):
        rows = order[idx]
        width = int(lengths[rows].max())
        loss, _ = model._loss(x[rows, -width:], y[rows, -width:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


train_on(sizes[0])  # warm-up
times = {b: [] for b in sizes}
for rep in range(5):
    for b in sizes[rep % len(sizes):] + sizes[:rep % len(sizes)]:
        times[b].append(train_on(b))
base = np.median(times[sizes[0]])
print(f"{dataset}: {len(x):,} prefixes per epoch, {model.n_items_:,} items")
for b in sizes:
    t = np.median(times[b])
    print(f"batch {b:5d}: {t:6.1f} s per 10,240 prefixes (median of 5; {len(x) / 10_240 * t:6.0f} s per epoch), "
          f"{base / t:.2f}x the speed of batch {sizes[0]}")
