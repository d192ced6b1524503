"""How long an epoch of the prefix-regime models (BSARec, SASRec-prefix) takes on MovieLens-1M, from a timed
share of one epoch: is a suite run of them affordable on 2 CPU cores?

    python benchmarks/notes/ml1m_prefix_cost.py [N_BATCHES]

Times the first N_BATCHES (default 40) training steps of one epoch of each model at its suite window (50),
one torch thread, and scales by the epoch's number of batches. Reads no validation or test figure.
"""
import json
import sys

import torch

import arborec.sequential._recommender as seqrec
from arborec.baselines import BSARec, SASRec, SASRecPrefix
from arborec.data import leave_one_out, load_prepared

N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
torch.set_num_threads(1)
data = load_prepared("ml-1m")
split = leave_one_out(data)
full = {}
original = seqrec.batch_order


def first_batches(lengths, batch_size, rng):
    batches = original(lengths, batch_size, rng)
    full["batches"] = len(batches)
    return batches[:N]


seqrec.batch_order = first_batches
out = []
for name, cls, params in (("sasrec (every position)", SASRec, {"max_len": 200}),
                          ("sasrec-prefix", SASRecPrefix, {"max_len": 50}),
                          ("bsarec", BSARec, {"max_len": 50})):
    model = cls(max_epochs=1, eval_every=1, seed=0, **params)
    model.fit(split, data)
    seconds = model.history_[0]["seconds"]
    out.append({"model": name, "params": params, "batches_per_epoch": full["batches"], "timed_batches": N,
                "seconds_timed": round(seconds, 2),
                "epoch_minutes_estimate": round(seconds / N * full["batches"] / 60, 1)})
    print(json.dumps(out[-1]), flush=True)
