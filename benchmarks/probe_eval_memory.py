"""Peak memory of one full-ranking evaluation on a prepared folder: an untrained SASRec, 2,048 sampled test users.

Run it with the code to compare on PYTHONPATH: PYTHONPATH=<code> /usr/bin/time -v python benchmarks/probe_eval_memory.py PREPARED_DIR
"""

import resource
import sys
import time

import numpy as np
import torch

from arborec.baselines import SASRec
from arborec.data import PreparedData, leave_one_out
from arborec.evaluate import evaluate
torch.set_num_threads(1)
split = leave_one_out(PreparedData.load(sys.argv[1]))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
model = SASRec(seed=0)
model.n_items_ = split.n_items
torch.manual_seed(0)
model.module_ = model._build_module(split.n_items).eval()
users = np.sort(np.random.default_rng(0).choice(split.eval_users("test"), 2048, replace=False))
t0 = time.perf_counter()
r = evaluate(model, split, "test", users=users)
print({"eval_s": round(time.perf_counter() - t0, 1), "peak_before_eval_mb": round(base),
       "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "ndcg10": r.metrics["ndcg@10"]})
