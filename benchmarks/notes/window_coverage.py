"""How many of each suite dataset's training events a window of ``max_len`` makes targets (the rest are dropped
unless ``earlier_windows``): the share per window length, and the share of users whose history outgrows it.

    ARBOREC_DATA_DIR=../shared/data python benchmarks/notes/window_coverage.py [DATASET ...]

Counts on the suite's split (leave-one-out: the last two events of each user are validation and test).
Write-up: benchmarks/notes/every_event.md.
"""
import sys

import numpy as np

from arborec.data import leave_one_out, load_prepared
from arborec.suite._config import DATASETS

if __name__ == "__main__":
    print("| dataset | users | mean training events | targets at window 50 | at 200 | users longer than 50 | than 200 |")
    print("|---|---|---|---|---|---|---|")
    for name in sys.argv[1:] or list(DATASETS):
        split = leave_one_out(load_prepared(name))
        n = np.diff(split.train_indptr) - 1  # next-item targets of each user's training sequence
        n = n[n > 0]
        share = {L: np.minimum(n, L).sum() / n.sum() for L in (50, 200)}
        print(f"| {name} | {len(n):,} | {n.mean() + 1:.1f} | {share[50]:.1%} | {share[200]:.1%} "
              f"| {(n > 50).mean():.1%} | {(n > 200).mean():.1%} |")
