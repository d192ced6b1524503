"""Per-epoch progress lines: their content, the ETA bound, and the CLI showing them by default and not with -q."""

import logging
import os
import subprocess
import sys
from pathlib import Path

from arborec.progress import EpochProgress

ROOT = Path(__file__).resolve().parents[1]


def test_line_has_loss_validation_best_speed_and_eta(caplog):
    report = EpochProgress("sasrec", max_epochs=100, patience=3, eval_every=2)
    with caplog.at_level(logging.INFO, logger="arborec"):
        report.epoch_end(1, 7.5, 10.0)  # not validated
        report.epoch_end(2, 7.0, 10.0, valid=0.05)  # a new best
        report.epoch_end(3, 6.9, 10.0)
        line = report.epoch_end(4, 6.8, 10.0, valid=0.04)  # worse: 1 of 3 checks without a new best
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and lines[0].startswith("sasrec epoch 1/100  loss 7.5000") and "valid" not in lines[0]
    assert "valid ndcg@10 0.0400" in line and "best 0.0500 @2" in line and "10.0 s/epoch" in line
    # No new best: checks at epochs 6 and 8 end the run, 4 epochs (40 s) from now; max_epochs: 96 more (16 min).
    assert "eta 40s (if no new best) to 16m00s (max_epochs)" in line


def test_fast_loops_are_thinned_but_the_last_epoch_shows(caplog):
    report = EpochProgress("als", max_epochs=15, unit="iteration", min_interval=60.0)
    with caplog.at_level(logging.INFO, logger="arborec"):
        shown = [report.epoch_end(i, None, 0.01) for i in range(1, 16)]
    assert shown[0] is not None and all(s is None for s in shown[1:-1])
    assert shown[-1].startswith("als iteration 15/15")


def test_cli_shows_epoch_lines_by_default_and_quiet_silences_them(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "ARBOREC_CACHE_DIR": str(tmp_path)}

    def start(*flags):
        cmd = [sys.executable, "-m", "arborec", *flags, "evaluate", "--data", "synthetic", "--model", "sasrec",
               "--param", "max_epochs=2", "--param", "eval_every=1", "--output", str(tmp_path / f"r{len(flags)}.json")]
        return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    runs = {"default": start(), "quiet": start("-q")}  # side by side: each is mostly the torch import
    out = {name: p.communicate(timeout=120) for name, p in runs.items()}
    assert all(p.returncode == 0 for p in runs.values()), out
    loud, quiet = out["default"][1], out["quiet"][1]
    assert "sasrec epoch 1/2  loss" in loud and "sasrec epoch 2/2" in loud and "valid ndcg@10" in loud
    assert "sasrec epoch" not in quiet and "sasrec epoch" not in out["quiet"][0]
    assert "ndcg@10" in out["quiet"][0]  # the result table is still printed
