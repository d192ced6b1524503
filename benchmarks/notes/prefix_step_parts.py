"""Where a training step of arborec's prefix regime spends its time: the fused item table, each user stream,
the full softmax, and the whole loss (forward and backward), medians over 60 batches of one epoch's order.

    ARBOREC_DATA_DIR=../shared/data python benchmarks/notes/prefix_step_parts.py amazon-beauty [BATCH]

Training data only (validation and test are never read). Write-up: batch_size.md here.
"""
import sys
import time

import numpy as np
import torch

from arborec.data import leave_one_out, load_prepared
from arborec.model import ArboRec
from arborec.sequential import batch_order

torch.set_num_threads(1)
dataset = sys.argv[1]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 128
data = load_prepared(dataset)
split = leave_one_out(data)
model = ArboRec(max_len=50, dropout=0.4, lr=1e-3, seed=0, batch_size=batch)
model._setup_fit(split, data)
model.n_items_ = split.n_items
module = model.module_ = model._build_module(split.n_items)
module.train()
inputs, targets = model._training_pairs(split)
lengths = (inputs > 0).sum(1)
batches = batch_order(lengths, batch, np.random.default_rng(0))[:60]
x, y = torch.from_numpy(inputs), torch.from_numpy(targets)


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
