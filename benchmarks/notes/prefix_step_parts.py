"""Where a training step of arborec's prefix regime spends its time: the fused item table, each user stream,
the full softmax, and the whole loss (forward and backward), medians over 60 batches of one epoch's order.

    ARBOREC_DATA_DIR=../shared/data python benchmarks/notes/prefix_step_parts.py amazon-beauty [BATCH]

Training data only (validation and test are never read). Write-up: batch_size.md here.
"""
import sys
import time

import numpy as np
import torch

from _prefix_model import untrained_arborec
from arborec.sequential import batch_order

dataset = sys.argv[1]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 128
model, x, y, lengths = untrained_arborec(dataset, batch_size=batch)
module = model.module_
batches = batch_order(lengths, batch, np.random.default_rng(0))[:60]


def median_ms(part) -> float:
    """Median milliseconds of ``part(seq, tgt)`` and the backward pass of its output's sum, over the batches."""
    times = []
    for idx in batches:
        width = int(lengths[idx].max())
        t0 = time.perf_counter()
        out = part(x[idx, -width:], y[idx, -width:])
        out.sum().backward()
        times.append(time.perf_counter() - t0)
        module.zero_grad()
    return float(np.median(times)) * 1e3


table = module.items().detach()  # the streams and the softmax below read a fixed table: their own cost only
parts = {
    "fused item table": lambda seq, tgt: module.items(),
    "long-term stream (GRU)": lambda seq, tgt: module.long_repr(module.long_stream(seq, table)),
    "short-term stream (attention)": lambda seq, tgt: module.short_stream(seq, table),
    "full softmax (loss and its gradient to the users)": lambda seq, tgt: model._output_loss(
        torch.randn(len(seq), table.shape[1], requires_grad=True), table[1:], tgt[:, -1] - 1),
    "whole loss": lambda seq, tgt: model._loss(seq, tgt)[0],
}
print(f"{dataset}, batch {batch}, mean width {np.mean([lengths[i].max() for i in batches]):.1f}")
for name, part in parts.items():
    print(f"{name:52s} {median_ms(part):6.1f} ms")
