"""Train and evaluate RecBole 1.2.1 models on the split that arborec uses, and record the results.

Runs in the RecBole environment (``benchmarks/.venv-recbole``, made by ``setup.sh``), on the atomic
files that ``export_atomic.py`` wrote. Each model runs in its own child process (so that its peak
memory is its own and no global state leaks from one model into the next); the parent merges the
records into ``benchmarks/results/recbole_<dataset>.json`` (replacing earlier records of the same
model) and rewrites ``benchmarks/results/recbole.md`` from every ``recbole_*.json`` found there.

Example::

    benchmarks/.venv-recbole/bin/python benchmarks/recbole_peer/run_recbole.py --data ml-100k \\
        --models pop bpr gru4rec sasrec --epochs 200 --max-epochs sasrec=12 gru4rec=30

Before training, the split that RecBole builds is checked against arborec's (``split.npz``):
every train/valid/test row must be the same (user, item, position) as ours, with the same
history for the sequential models; any difference stops the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_WORK = HERE.parent / "work"
DEFAULT_RESULTS = HERE.parent / "results"

MODELS = {"pop": "Pop", "bpr": "BPR", "gru4rec": "GRU4Rec", "sasrec": "SASRec"}
SEQUENTIAL = {"gru4rec", "sasrec"}
KS = (5, 10, 20)
MAX_SEQ_LEN = 50

# Model settings. Everything not listed is RecBole 1.2.1's default (properties/model/<Model>.yaml,
# overall.yaml), which the record stores in full under "recbole_config".
MODEL_CONFIG = {
    # RecBole's Pop counts with `item_cnt[item] = item_cnt[item] + 1` over a batch, which adds 1 however
    # often an item occurs in the batch (so popular items all tie at the number of batches), and with
    # negative sampling it would also count the random negatives: one positive per batch, no negatives.
    "pop": {"train_neg_sample_args": None, "train_batch_size": 1},
    "bpr": {"embedding_size": 64},
    "gru4rec": {"embedding_size": 64, "hidden_size": 128, "num_layers": 1, "dropout_prob": 0.3,
                "loss_type": "CE", "train_neg_sample_args": None},
    "sasrec": {"n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256, "hidden_dropout_prob": 0.5,
               "attn_dropout_prob": 0.5, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
               "initializer_range": 0.02, "loss_type": "CE", "train_neg_sample_args": None},
}

CAVEATS = """\
- **Same split, checked.** `export_atomic.py` writes arborec's prepared data with each event's
  position in the user's sequence as its timestamp; RecBole's `LS: valid_and_test`, `order: TO`,
  `group_by: user` then cuts the same leave-one-out split. `run_recbole.py` checks every
  train/valid/test row RecBole built (user, item, position, and for GRU4Rec/SASRec the 50-item
  history) against arborec's `split.npz` before training, and stops on any difference.
- **Seen items.** RecBole's full ranking excludes a user's earlier items for the general models (Pop,
  BPR) but *not* for the sequential models (GRU4Rec, SASRec), which are ranked over the whole
  catalogue. arborec always excludes them. The columns "excl." recompute every model's ranking under
  arborec's protocol (earlier items excluded, ties broken by item index, the same formulas), from
  the same RecBole model and checkpoint; use those to compare with arborec's own models. For Pop and
  BPR they equal RecBole's own figures up to tie order; for the sequential models the difference
  is large when they are under-trained (GRU4Rec on ml-100k: test NDCG@10 0.037 vs 0.063 excl.).
  RecBole Pop's "excl." figures equal arborec's `MostPop` exactly (every metric, valid and test,
  both datasets): an end-to-end check of the split, the id mapping and the metric code.
- **Beauty's test set is harder than its validation set** for every model, Pop included (arborec's
  MostPop shows the same gap): a property of the data (targets one step further from the training
  history), not of the runner. On ml-100k valid and test are close.
- **Metrics.** With one held-out item per user RecBole's `Hit@K` equals arborec's `recall@K` (and
  RecBole's own `Recall@K`); NDCG@K and MRR@K use the same formulas. RecBole's `ItemCoverage`
  metric fails in 1.2.1 (`'int' object has no attribute 'cpu'`), so coverage@10 (share of the
  catalogue in some user's top 10) is computed by this runner from the same scores.
- **Model selection.** Each model is evaluated every epoch on the validation targets; training stops
  when valid NDCG@10 has not improved for `stopping_step` evaluations, or at the epoch cap, and the
  test figures come from the best validation epoch's checkpoint. "stopped by: cap" means the
  model was still allowed to improve: its figures are a lower bound for that configuration.
- **Pop** runs with `train_batch_size: 1` and no negative sampling. RecBole 1.2.1's `Pop` counts
  `item_cnt[item] = item_cnt[item] + 1` per batch, which adds 1 however often an item occurs in the
  batch: with the default batch of 2048 every popular item ties at the number of batches (48 on
  ml-100k) and the ranking is mostly tie order; with the default negative sampling it also counts
  the random negatives. One event per batch gives true counts. One epoch (RecBole's
  TraditionalTrainer); ties between equal counts are ordered by `torch.topk` in RecBole's figures
  and by item index in the "excl." figures.
- **Threads.** One CPU thread (`torch.set_num_threads(1)`) on a machine shared with other jobs:
  timings are indicative, not a clean benchmark.
"""


# --------------------------------------------------------------------------------------------- parent

def parse_caps(items: list[str]) -> dict[str, int]:
    caps = {}
    for item in items or []:
        name, _, value = item.partition("=")
        if name not in MODELS or not value.isdigit():
            raise SystemExit(f"--max-epochs: expected MODEL=N with MODEL in {sorted(MODELS)}, got {item!r}")
        caps[name] = int(value)
    return caps


def parse_sets(items: list[str]) -> dict[str, dict]:
    """``--set sasrec.hidden_dropout_prob=0.2`` -> {"sasrec": {"hidden_dropout_prob": 0.2}}; ``all.`` for every model."""
    out: dict[str, dict] = {}
    for item in items or []:
        key, _, value = item.partition("=")
        model, _, param = key.partition(".")
        if (model not in MODELS and model != "all") or not param or not _:
            raise SystemExit(f"--set: expected MODEL.PARAM=VALUE (MODEL in {sorted(MODELS)} or all), got {item!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(model, {})[param] = parsed
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 1)[1])
    p.add_argument("--data", help="dataset name as exported (ml-100k, amazon-beauty)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--epochs", type=int, default=300, help="epoch cap for every model (RecBole default 300)")
    p.add_argument("--max-epochs", nargs="*", default=[], metavar="MODEL=N", help="per-model epoch caps")
    p.add_argument("--stopping-step", type=int, default=10, help="early stopping patience, in evaluations")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--train-batch-size", type=int, default=2048)
    p.add_argument("--set", nargs="*", default=[], metavar="MODEL.PARAM=VALUE", help="extra RecBole settings")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK)
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--summary-only", action="store_true", help="only rewrite recbole.md from the JSON files")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_record-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_command", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.work, args.results = args.work.resolve(), args.results.resolve()

    if args._child:
        return child(args)
    if args.summary_only:
        print(write_summary(args.results))
        return 0
    if not args.data:
        p.error("--data is required")

    caps = parse_caps(args.max_epochs)
    parse_sets(args.set)  # validate early
    command = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
                          else sys.executable, *sys.argv])
    meta_path = args.work / f"arborec-{args.data}" / "split.json"
    if not meta_path.exists():
        raise SystemExit(f"{meta_path} not found: run export_atomic.py --data {args.data} first (in arborec's venv)")

    out_path = args.results / f"recbole_{args.data}.json"
    failed = []
    for name in args.models:
        cap = 1 if name == "pop" else caps.get(name, args.epochs)
        log_dir = args.work / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        log_path = log_dir / f"{args.data}_{name}_{stamp}.log"
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False, dir=args.work) as tmp:
            record_out = tmp.name
        cmd = [sys.executable, __file__, "--data", args.data, "--_child", name, "--epochs", str(cap),
               "--stopping-step", str(args.stopping_step), "--seed", str(args.seed), "--threads", str(args.threads),
               "--train-batch-size", str(args.train_batch_size), "--work", str(args.work),
               "--_record-out", record_out, "--_command", command]
        if args.set:
            cmd += ["--set", *args.set]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                   TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONUNBUFFERED="1")
        print(f"[{dt.datetime.now():%H:%M:%S}] {args.data} {name} (epoch cap {cap}): log {log_path}", flush=True)
        with log_path.open("w") as log:
            rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            print(f"  FAILED (exit {rc}); last lines of {log_path}:", flush=True)
            print("".join(log_path.read_text().splitlines(keepends=True)[-25:]), flush=True)
            failed.append(name)
            Path(record_out).unlink(missing_ok=True)
            continue
        record = json.loads(Path(record_out).read_text())
        Path(record_out).unlink()
        record["log"] = os.path.relpath(log_path, ROOT)
        merge_record(out_path, record)
        v, t = record["valid"]["metrics"], record["test"]["metrics"]
        print(f"  valid NDCG@10 {v['ndcg@10']:.4f}  test NDCG@10 {t['ndcg@10']:.4f} R@10 {t['recall@10']:.4f}  "
              f"epochs {record['epochs_run']} ({record['stopped_by']}), {record['seconds_per_epoch']:.1f} s/epoch, "
              f"fit {record['fit_seconds']:.0f} s, peak {record['peak_memory_mb']:.0f} MiB", flush=True)
    write_summary(args.results)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
        return 1
    return 0


def merge_record(path: Path, record: dict) -> None:
    records = json.loads(path.read_text()) if path.exists() else []
    records = [r for r in records if r["model"] != record["model"]] + [record]
    order = {f"recbole-{m}": i for i, m in enumerate(MODELS)}
    records.sort(key=lambda r: order.get(r["model"], 99))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2) + "\n")


def write_summary(results: Path) -> Path:
    files = sorted(results.glob("recbole_*.json"))
    lines = ["# RecBole 1.2.1 on arborec's split", "",
             "Written by `benchmarks/recbole_peer/run_recbole.py` from the `recbole_<dataset>.json` records "
             "next to this file. How to reproduce: `benchmarks/recbole_peer/README.md`.", ""]
    commands, machines = [], []
    for f in files:
        records = json.loads(f.read_text())
        if not records:
            continue
        r0 = records[0]
        checks = []
        for kind, names in (("general models", ("recbole-pop", "recbole-bpr")),
                            ("sequential models", ("recbole-gru4rec", "recbole-sasrec"))):
            rows = sorted({"/".join(str(r["split_check"]["rows"][k]) for k in ("train", "valid", "test"))
                           for r in records if r["model"] in names})
            if rows:
                checks.append(f"{kind} {', '.join(rows)} train/valid/test rows"
                              + (" (one per training target; 50-item histories equal)" if "seq" in kind else ""))
        lines += [f"## {r0['dataset']}", "",
                  f"split `{r0['split_hash']}`: {r0['dataset_stats']['n_users']} users, "
                  f"{r0['dataset_stats']['n_items']} items, {r0['dataset_stats']['n_interactions']} events. "
                  f"RecBole's split matched arborec's exactly: "
                  f"{'yes' if all(r['split_check']['matched'] for r in records) else 'NO'} "
                  f"({'; '.join(checks)}).", "",
                  "| model | valid NDCG@10 | valid R@10 | test NDCG@10 | test R@10 | test MRR@10 | test NDCG@20 "
                  "| valid NDCG@10 excl. | test NDCG@10 excl. | test R@10 excl. | s/epoch (median) | epochs (cap) | stopped by "
                  "| best epoch | fit wall s | peak MiB |",
                  "|---|" + "---:|" * 15]
        capped = []
        for r in records:
            v, t = r["valid"]["metrics"], r["test"]["metrics"]
            vx, tx = r["valid"]["metrics_history_excluded"], r["test"]["metrics_history_excluded"]
            lines.append(
                f"| {r['model']} | {v['ndcg@10']:.4f} | {v['recall@10']:.4f} | {t['ndcg@10']:.4f} | "
                f"{t['recall@10']:.4f} | {t['mrr@10']:.4f} | {t['ndcg@20']:.4f} | {vx['ndcg@10']:.4f} | {tx['ndcg@10']:.4f} | "
                f"{tx['recall@10']:.4f} | {r['seconds_per_epoch']:.1f} | {r['epochs_run']} ({r['epoch_cap']}) | "
                f"{r['stopped_by']} | {r['best_epoch']} | {r['fit_seconds']:.0f} | {r['peak_memory_mb']:.0f} |")
            if r["stopped_by"] == "cap":
                capped.append(f"{r['model']} ({r['epochs_run']} epochs, best at epoch {r['best_epoch']})")
            if r["command"] not in commands:
                commands.append(r["command"])
            m = r["machine"]
            desc = f"{m.get('cpu_model', '?')}, {m['cpus']} CPUs, torch {m['torch']} with {m['torch_threads']} thread(s)"
            if desc not in machines:
                machines.append(desc)
        lines.append("")
        if capped:
            lines += [f"**Stopped by the epoch cap, not by early stopping:** {', '.join(capped)}. Their validation "
                      "NDCG@10 was still rising or had not stalled for `stopping_step` epochs: these figures are "
                      "lower bounds for these settings, not converged results.", ""]
    lines += ["Columns: R = recall (= RecBole's Hit with one target). \"excl.\" = the same model's ranking "
              "recomputed with the user's earlier items excluded, as arborec evaluates (see caveats). "
              "\"s/epoch\" is training only; each epoch is followed by a validation pass, included in "
              "\"fit wall s\". \"best epoch\" counts from 0.", "",
              "## Commands", "", "```"] + commands + ["```", "", "Machine: " + "; ".join(machines), "",
              "## Caveats", "", CAVEATS]
    results.mkdir(parents=True, exist_ok=True)
    path = results / "recbole.md"
    path.write_text("\n".join(lines))
    return path


# ---------------------------------------------------------------------------------------------- child

class _NoColor(logging.Filter):
    ansi = re.compile(r"\x1b\[[0-9;]*m")

    def filter(self, record):
        record.msg, record.args = self.ansi.sub("", record.getMessage()), None
        return True


def machine_info(torch) -> dict:
    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count(),
            "cpu_model": cpu_model, "python": sys.version.split()[0], "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


def code_version() -> str:
    import recbole

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"recbole {recbole.__version__}; arborec peer runner" + (f" @ {sha}" if sha else "")


def split_hash(s) -> str:
    """arborec's Split.fingerprint(), recomputed from split.npz (so that the file is known to be that split)."""
    import numpy as np

    h = hashlib.sha256()
    for key in ("train_indptr", "train_items", "valid_target", "test_target"):
        h.update(np.ascontiguousarray(s[key]).tobytes())
    h.update(f"{int(s['n'][0])},{int(s['n'][1])}".encode())
    return h.hexdigest()[:16]


class Ours:
    """arborec's split, in arborec's indices, and the maps to and from RecBole's internal ids."""

    def __init__(self, npz_path: Path, dataset):
        import numpy as np

        s = np.load(npz_path)
        self.hash = split_hash(s)
        self.n_users, self.n_items = (int(x) for x in s["n"])
        self.train_indptr = s["train_indptr"].astype(np.int64)
        self.train_items = s["train_items"].astype(np.int64)
        self.valid_target = s["valid_target"].astype(np.int64)
        self.test_target = s["test_target"].astype(np.int64)
        self.n_train = np.diff(self.train_indptr)
        evaluated = self.valid_target >= 0
        self.length = self.n_train + 2 * evaluated
        # Full per-user sequences in time order: train items, valid target, test target.
        self.indptr = np.concatenate([[0], np.cumsum(self.length)])
        full = np.empty(self.indptr[-1], dtype=np.int64)
        pos = np.arange(self.indptr[-1]) - np.repeat(self.indptr[:-1], self.length)
        is_train = pos < np.repeat(self.n_train, self.length)
        full[is_train] = self.train_items
        ends = self.indptr[1:][evaluated]
        full[ends - 1] = self.test_target[evaluated]
        full[ends - 2] = self.valid_target[evaluated]
        self.full = full

        # RecBole id <-> our index. Tokens are our indices as strings; id 0 is RecBole's padding.
        uid_tokens = dataset.field2id_token[dataset.uid_field]
        iid_tokens = dataset.field2id_token[dataset.iid_field]
        if len(uid_tokens) != self.n_users + 1 or len(iid_tokens) != self.n_items + 1:
            raise SplitMismatch(f"RecBole has {len(uid_tokens) - 1} users / {len(iid_tokens) - 1} items, "
                                f"arborec {self.n_users} / {self.n_items}")
        self.uid_to_ours = np.concatenate([[-1], uid_tokens[1:].astype(np.int64)])
        self.iid_to_ours = np.concatenate([[-1], iid_tokens[1:].astype(np.int64)])
        self.ours_to_iid = np.empty(self.n_items, dtype=np.int64)
        self.ours_to_iid[self.iid_to_ours[1:]] = np.arange(1, self.n_items + 1)

    def history(self, stage: str, users):
        """(rows, items) of the items a user has seen before ``stage``'s target, in our indices."""
        import numpy as np

        lens = self.n_train[users] + (1 if stage == "test" else 0)
        rows = np.repeat(np.arange(len(users)), lens)
        starts = np.repeat(self.indptr[users], lens)
        offs = np.arange(lens.sum()) - np.repeat(np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        return rows, self.full[starts + offs]


class SplitMismatch(AssertionError):
    pass


def check_split(ours: Ours, built, sequential: bool, max_len: int) -> dict:
    """Check that RecBole's train/valid/test datasets are exactly arborec's split. Raises SplitMismatch."""
    import numpy as np

    summary = {}
    for stage, ds in zip(("train", "valid", "test"), built):
        feat = ds.inter_feat
        u = ours.uid_to_ours[feat[ds.uid_field].numpy()]
        item = ours.iid_to_ours[feat[ds.iid_field].numpy()]
        p = feat[ds.time_field].numpy()
        if not np.all(p == np.round(p)):
            raise SplitMismatch(f"{stage}: timestamps are not the exported positions (normalised?)")
        p = p.astype(np.int64)
        if np.any(u < 0) or np.any(item < 0):
            raise SplitMismatch(f"{stage}: padding ids among the rows")
        # Expected (user, position) pairs.
        if stage == "train":
            first = 1 if sequential else 0  # a sequence model's first event is a history, never a target
            n = np.maximum(ours.n_train - first, 0)
            exp_u = np.repeat(np.arange(ours.n_users), n)
            exp_p = np.arange(n.sum()) - np.repeat(np.concatenate([[0], np.cumsum(n)[:-1]]), n) + first
        else:
            exp_u = np.flatnonzero(ours.valid_target >= 0)
            exp_p = ours.n_train[exp_u] + (0 if stage == "valid" else 1)
        got = np.sort(u * (1 << 20) + p)
        want = np.sort(exp_u * (1 << 20) + exp_p)
        if len(got) != len(want) or not np.array_equal(got, want):
            raise SplitMismatch(f"{stage}: RecBole has {len(got)} rows, arborec {len(want)}; "
                                f"{len(np.setdiff1d(got, want))} RecBole rows are not arborec's")
        if not np.array_equal(item, ours.full[ours.indptr[u] + p]):
            bad = int((item != ours.full[ours.indptr[u] + p]).sum())
            raise SplitMismatch(f"{stage}: {bad} rows have a different item than arborec at that position")
        if sequential:
            lens = feat[ds.item_list_length_field].numpy().astype(np.int64)
            if not np.array_equal(lens, np.minimum(p, max_len)):
                raise SplitMismatch(f"{stage}: history lengths differ from min(position, {max_len})")
            lists = feat[ds.item_id_list_field].numpy()
            width = lists.shape[1]
            col = np.arange(width)[None, :]
            idx = (ours.indptr[u] + p - lens)[:, None] + col
            want_hist = np.where(col < lens[:, None], ours.full[np.minimum(idx, len(ours.full) - 1)], -1)
            got_hist = np.where(lists > 0, ours.iid_to_ours[lists], -1)
            if not np.array_equal(got_hist, want_hist):
                raise SplitMismatch(f"{stage}: {int((got_hist != want_hist).any(1).sum())} histories differ")
        summary[stage] = int(len(got))
    return summary


def child(args) -> int:
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # RecBole's checkpoints hold its Config
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    name = args._child
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    for h in logging.getLogger().handlers:
        h.addFilter(_NoColor())
    log = logging.getLogger("run_recbole")

    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value pairs from the command line
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed
    import recbole

    rb_name = f"arborec-{args.data}"
    folder = (args.work / rb_name).resolve()
    os.chdir(folder)  # RecBole's Trainer writes a log_tensorboard/ folder into the working directory
    meta = json.loads((folder / "split.json").read_text())
    sequential = name in SEQUENTIAL
    model_params = dict(MODEL_CONFIG[name])
    overrides = parse_sets(args.set)
    model_params.update(overrides.get("all", {}))
    model_params.update(overrides.get(name, {}))
    n_items = meta["n_items"]
    config_dict = {
        # data: our atomic file, nothing filtered, nothing normalised
        "data_path": str(folder.parent), "checkpoint_dir": str(folder / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "normalize_all": False, "normalize_field": None, "rm_dup_inter": None, "val_interval": None,
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",
        "MAX_ITEM_LIST_LENGTH": MAX_SEQ_LEN,
        # evaluation: leave-one-out on positions = arborec's split; full ranking
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "repeatable": sequential,
        "metrics": ["Hit", "Recall", "NDCG", "MRR"], "topk": list(KS),
        "valid_metric": "NDCG@10", "metric_decimal_place": 6,
        # training
        "epochs": args.epochs, "stopping_step": args.stopping_step, "eval_step": 1,
        "train_batch_size": args.train_batch_size,
        # eval batches: rows for sequential models, users x items for general ones
        "eval_batch_size": 4096 if sequential else 256 * (n_items + 1),
        "seed": args.seed, "reproducibility": True, "use_gpu": False, "device": "cpu", "worker": 0,
        "show_progress": False, "state": "INFO", "log_wandb": False,
    }
    config_dict.update(model_params)
    config = Config(model=MODELS[name], dataset=rb_name, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    log.info("config:\n%s", config)

    t_data = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    ours = Ours(folder / "split.npz", dataset)
    if ours.hash != meta["split_hash"]:
        raise SplitMismatch(f"split.npz hashes to {ours.hash}, split.json says {meta['split_hash']}")
    built = (train_data._dataset, valid_data._dataset, test_data._dataset)
    counts = check_split(ours, built, sequential, MAX_SEQ_LEN)
    summary = (f"train/valid/test rows {counts['train']}/{counts['valid']}/{counts['test']}"
               + (" (sequence targets), histories equal" if sequential else ""))
    log.info("split check passed: %s (split %s)", summary, ours.hash)
    data_seconds = time.perf_counter() - t_data

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    # Importing recbole.model.sequential_recommender (sine.py) switches anomaly detection on, which
    # makes every backward pass many times slower.
    torch.autograd.set_detect_anomaly(False)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    log.info("model:\n%s", model)

    epoch_seconds, valid_seconds, valid_curve = [], [], []
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train(*a, **kw):
        t = time.perf_counter()
        out = train_epoch(*a, **kw)
        epoch_seconds.append(time.perf_counter() - t)
        return out

    def timed_valid(*a, **kw):
        t = time.perf_counter()
        score, result = valid_epoch(*a, **kw)
        valid_seconds.append(time.perf_counter() - t)
        valid_curve.append(round(float(score), 6))
        return score, result

    trainer._train_epoch, trainer._valid_epoch = timed_train, timed_valid
    assert not torch.is_anomaly_enabled()
    t_fit = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_seconds = time.perf_counter() - t_fit

    t_eval = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    eval_seconds = time.perf_counter() - t_eval
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # before our own re-scoring
    # Re-score with the best checkpoint (loaded above) under arborec's protocol.
    valid_excl, valid_cov = protocol_metrics(trainer, valid_data, ours, "valid")
    test_excl, test_cov = protocol_metrics(trainer, test_data, ours, "test")
    checkpoint = trainer.saved_model_file

    epochs_run = len(epoch_seconds)
    cap = trainer.epochs
    best_epoch = int(np.flatnonzero(np.asarray(valid_curve) == max(valid_curve))[-1]) if valid_curve else None
    if name == "pop":
        stopped_by = "n/a (1 epoch)"
    elif epochs_run < cap or trainer.cur_step > args.stopping_step:
        stopped_by = "early stopping"
    else:
        stopped_by = "cap"

    def ours_metrics(result, coverage):
        out = {}
        for k in KS:
            out[f"recall@{k}"] = float(result[f"hit@{k}"])
            out[f"ndcg@{k}"] = float(result[f"ndcg@{k}"])
            out[f"mrr@{k}"] = float(result[f"mrr@{k}"])
            if abs(result[f"hit@{k}"] - result[f"recall@{k}"]) > 1e-9:
                raise AssertionError(f"Hit@{k} != Recall@{k} with one target per user: {result}")
        out["coverage@10"] = coverage
        return out

    stats = dict(meta["dataset_stats"])
    record = {
        "dataset": args.data, "dataset_stats": stats, "split_hash": meta["split_hash"],
        "model": f"recbole-{name}", "params": model_params, "seed": args.seed,
        "valid": {"stage": "valid", "n_users": counts["valid"], "metrics": ours_metrics(best_valid_result, valid_cov),
                  "slices": {}, "metrics_history_excluded": valid_excl,
                  "recbole_raw": {k: float(v) for k, v in best_valid_result.items()}},
        "test": {"stage": "test", "n_users": counts["test"], "metrics": ours_metrics(test_result, test_cov),
                 "slices": {}, "metrics_history_excluded": test_excl,
                 "recbole_raw": {k: float(v) for k, v in test_result.items()}},
        "fit_seconds": round(fit_seconds, 3), "eval_seconds": round(eval_seconds, 3),
        "peak_memory_mb": round(peak_mb, 1),
        "peak_memory_mb_with_recheck": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "code_version": code_version(), "machine": machine_info(torch),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": args._command or shlex.join(sys.argv),
        "framework": "recbole", "recbole_version": recbole.__version__,
        "metrics_source": "metrics: RecBole's evaluator (Hit@K as recall@K); coverage@10: share of the n_items "
                          "items in some user's top 10 of RecBole's ranking (RecBole's ItemCoverage fails in 1.2.1); "
                          "metrics_history_excluded: the same checkpoint's scores ranked under arborec's protocol",
        "epoch_cap": cap, "epochs_run": epochs_run, "stopped_by": stopped_by, "best_epoch": best_epoch,
        "stopping_step": args.stopping_step,
        "seconds_per_epoch": round(statistics.median(epoch_seconds), 3) if epoch_seconds else 0.0,
        "epoch_seconds": [round(x, 3) for x in epoch_seconds],
        "valid_eval_seconds_median": round(statistics.median(valid_seconds), 3) if valid_seconds else 0.0,
        "valid_ndcg10_curve": valid_curve,
        "train_loss_curve": [round(float(trainer.train_loss_dict[e]), 4) for e in sorted(trainer.train_loss_dict)],
        "data_seconds": round(data_seconds, 3),
        "split_check": {"matched": True, "summary": summary, "rows": counts},
        "recbole_config": {k: v for k, v in config.final_config_dict.items() if k not in ("device",)},
    }
    Path(args._record_out).write_text(json.dumps(record, indent=2, default=str) + "\n")
    Path(checkpoint).unlink(missing_ok=True)  # a few MB per run; the figures are in the record
    log.info("done: %s", json.dumps({k: record[k] for k in ("epochs_run", "stopped_by", "seconds_per_epoch",
                                                           "fit_seconds", "peak_memory_mb")}))
    log.info("valid %s", record["valid"]["metrics"])
    log.info("test %s", record["test"]["metrics"])
    log.info("test (history excluded) %s", test_excl)
    return 0


def protocol_metrics(trainer, loader, ours: Ours, stage: str) -> tuple[dict, float]:
    """Rank every item for each evaluated user as arborec does: earlier items excluded (-inf), ties by item index.

    Returns those metrics, and the coverage@10 of RecBole's own ranking (no extra exclusion).
    """
    import numpy as np
    import torch

    ds = loader._dataset
    ranks, covered = [], np.zeros(ours.n_items, dtype=bool)
    covered_recbole = np.zeros(ours.n_items, dtype=bool)  # top 10 of RecBole's own ranking
    order = torch.as_tensor(ours.ours_to_iid)  # column j of our matrix = RecBole item ours_to_iid[j]
    trainer.model.eval()
    with torch.no_grad():
        for batch in loader:
            interaction, scores, positive_u, positive_i = trainer._full_sort_batch_eval(batch)
            users = ours.uid_to_ours[interaction[ds.uid_field].numpy()]
            targets = np.full(len(users), -1, dtype=np.int64)
            targets[positive_u.numpy()] = ours.iid_to_ours[positive_i.numpy()]
            if np.any(targets < 0):
                raise AssertionError(f"{stage}: a row without its target")
            s = scores[:, order].float().clone()
            covered_recbole[_top_k(s.numpy(), 10).ravel()] = True
            rows, items = ours.history(stage, users)
            s[torch.as_tensor(rows), torch.as_tensor(items)] = -torch.inf
            t_idx = torch.as_tensor(targets)
            t = s[torch.arange(len(users)), t_idx][:, None]
            higher = (s > t).sum(1)
            ties = ((s == t) & (torch.arange(ours.n_items)[None, :] < t_idx[:, None])).sum(1)
            ranks.append((higher + ties).numpy())
            top = _top_k(s.numpy(), 10)
            covered[top.ravel()] = True
    ranks = np.concatenate(ranks)
    expected = ours.valid_target if stage == "valid" else ours.test_target
    if len(ranks) != int((expected >= 0).sum()):
        raise AssertionError(f"{stage}: scored {len(ranks)} users, expected {(expected >= 0).sum()}")
    out = {}
    for k in KS:
        hit = ranks < k
        out[f"recall@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
        out[f"mrr@{k}"] = float(np.where(hit, 1.0 / (ranks + 1.0), 0.0).mean())
    out["coverage@10"] = float(covered.mean())
    return out, float(covered_recbole.mean())


def _top_k(scores, k: int):
    """(B, k) indices of the k best scores per row, best first, ties by lower index."""
    import numpy as np

    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


if __name__ == "__main__":
    raise SystemExit(main())
