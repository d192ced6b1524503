"""What the learned text pointer costs per training step: arborec with the pointer chosen after training
("auto": training does not read it) against pointer_weight="learned" (the mixture likelihood), the same
batches in one process, the two in alternation (machine noise hits both alike). Validation and test are
never read.

    ARBOREC_DATA_DIR=../shared/data python benchmarks/notes/pointer_step_cost.py amazon-beauty [n_batches]

Prints the median step time (forward, backward, Adam) of each and their ratio.
"""
import sys
import time

import numpy as np
import torch

from arborec.data import leave_one_out, load_prepared
from arborec.model import ArboRec
from arborec.sequential import adam
from arborec.sequential._windows import batch_order

torch.set_num_threads(1)
name, n_batches = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40
data = load_prepared(name)
split = leave_one_out(data)
models = {}
for kind in ("auto", "learned"):
    m = ArboRec(pointer_weight=kind, seed=0)
    m._setup_fit(split, data)
    m.n_items_ = split.n_items
    m.module_ = m._build_module(split.n_items)
    m.module_.train()
    models[kind] = (m, adam(m.module_.parameters(), 1e-3, 0.0, torch.device("cpu")))
m = models["auto"][0]
inputs, targets = m._training_pairs(split)
lengths = (inputs > 0).sum(1)
batches = batch_order(lengths, m.batch_size, np.random.default_rng(0))[:n_batches]
inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
times = {k: [] for k in models}
for i, idx in enumerate(batches):
    w = int(lengths[idx].max())
    for kind in (("auto", "learned") if i % 2 == 0 else ("learned", "auto")):
        model, opt = models[kind]
        t0 = time.perf_counter()
        loss, _ = model._loss(inputs[idx, -w:], targets[idx, -w:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times[kind].append(time.perf_counter() - t0)
med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
print(f"{name} ({m.regime_}, window {m.max_len_}, {len(batches)} batches): step auto {med['auto']:.1f} ms, "
      f"learned {med['learned']:.1f} ms, ratio learned/auto {med['learned'] / med['auto']:.2f}")
