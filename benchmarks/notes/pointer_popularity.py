"""Validation-only diagnosis: what the text pointer does to targets by popularity, and pointers that leave the
items the model knows to the model.

    python benchmarks/notes/pointer_popularity.py DATASET [SEED] [key=value ...]

Fits arborec with the given parameters (the suite's chosen setting by default; the fit resumes from
``runs/notes/<dataset>-seed<k>/training-state.pt`` if stopped), then scores the validation users with:

* ``model``: the network's score alone (no text term, no pointer);
* ``text``: plus the text term at the chosen ``text_weight_``;
* ``pointer``: plus the text pointer as arborec mixes it (weight chosen on validation);
* ``pointer-rare``: a pointer over the items with at most 5 training events only (the cold slice's bound);
* ``pointer-prior``: a pointer whose item prior falls with training events, ``exp(text / T) / (1 + count)``;
* ``text/(1+n)``, ``text/sqrt(1+n)``, ``text/(1+log(1+n))``: the text term weighted down by the item's training
  events n, so that it speaks for the items the model knows little about (weight chosen among 1-64, no pointer).

Each weight is chosen on validation NDCG@10 (pointers among arborec's candidates). Prints validation NDCG@10
overall and per target popularity bucket (training events of the target); the test split is never read.
"""
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from arborec.cli._common import parse_params
from arborec.data import leave_one_out, load_prepared
from arborec.model import ArboRec
from arborec.model._text_score import POINTER_WEIGHTS, _combine, _mix

BUCKETS = [(0, 0), (1, 2), (3, 5), (6, 12), (13, 31), (32, 10**9)]
SETTING = {"dropout": 0.4, "lr": 1e-3, "max_len": 50, "patience": 5, "max_epochs": 100, "eval_every": 2}


def bucket_table(ndcg: dict[str, np.ndarray], counts: np.ndarray) -> str:
    head = "| variant | all | " + " | ".join(f"{a}-{b}" if b < 10**9 else f">{a - 1}" for a, b in BUCKETS) + " |"
    lines = [head, "|" + "---|" * (len(BUCKETS) + 2),
             "| users | " + str(len(counts)) + " | "
             + " | ".join(str(int(((counts >= a) & (counts <= b)).sum())) for a, b in BUCKETS) + " |"]
    for name, v in ndcg.items():
        cells = [f"{v[(counts >= a) & (counts <= b)].mean():.4f}" for a, b in BUCKETS]
        lines.append(f"| {name} | {v.mean():.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    ds = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    data = load_prepared(ds)
    split = leave_one_out(data)
    model = ArboRec(**{**SETTING, "seed": seed, **parse_params(sys.argv[3:], "arborec")})
    model.resume_path = Path("runs/notes") / f"{ds}-seed{seed}" / "training-state.pt"
    model.fit(split, data)

    item_counts = split.item_train_counts()
    log_prior = torch.from_numpy(-np.log1p(item_counts).astype(np.float32))  # (n_items,)
    rare = torch.from_numpy(item_counts <= 5)
    names = ["model", "text", "pointer", "pointer-rare", "pointer-prior"]
    damping = {"text/(1+n)": 1 / (1 + item_counts), "text/sqrt(1+n)": 1 / np.sqrt(1 + item_counts),
               "text/(1+log(1+n))": 1 / (1 + np.log1p(item_counts))}
    damping = {k: v.astype(np.float32) for k, v in damping.items()}
    text_weights = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
    ranks = ({n: [] for n in names[:2]} | {(n, w): [] for n in names[2:] for w in POINTER_WEIGHTS[1:]}
             | {(n, t): [] for n in damping for t in text_weights})
    with torch.no_grad():
        for hist, (match, text), rank in model._validation_blocks(split, with_text=True):
            ranks["model"].append(rank(match.copy()))
            for name, d in damping.items():
                for t in text_weights:
                    ranks[(name, t)].append(rank(match + np.float32(t) * text * d))
            base = _combine(match.copy(), text, model.text_weight_)
            ranks["text"].append(rank(base.copy()))
            window, base_logp, pointer = model._pointer_parts(base, text, hist)
            logits = torch.from_numpy(text) / model.pointer_temperature_
            variants = {"pointer": pointer,
                        "pointer-rare": logits.masked_fill(~rare, -torch.inf),
                        "pointer-prior": logits + log_prior}
            for name in ("pointer-rare", "pointer-prior"):
                v = variants[name]
                v[window] = -torch.inf
                variants[name] = torch.log_softmax(v, dim=1)
            for name, p in variants.items():
                for w in POINTER_WEIGHTS[1:]:
                    ranks[(name, w)].append(rank(_mix(base_logp, p, w, window)))
    ranks = {k: np.concatenate(v) for k, v in ranks.items()}
    ndcg_of = {k: np.where(r < 10, 1.0 / np.log2(r + 2.0), 0.0) for k, r in ranks.items()}
    best = {"model": ndcg_of["model"], f"text (weight {model.text_weight_:g})": ndcg_of["text"]}
    for name in names[2:]:
        w = max(POINTER_WEIGHTS[1:], key=lambda w: ndcg_of[(name, w)].mean())
        best[f"{name} (weight {w:g})"] = ndcg_of[(name, w)]
    for name in damping:
        t = max(text_weights, key=lambda t: ndcg_of[(name, t)].mean())
        best[f"{name} (weight {t:g})"] = ndcg_of[(name, t)]
    counts = item_counts[split.targets("valid", split.eval_users("valid"))]
    print(f"{ds}, seed {seed}, validation NDCG@10 by the target's training events "
          f"(best epoch {model.best_epoch_}, loop's best {model.best_valid_ndcg_:.4f}):")
    print(bucket_table(best, counts))
    out = Path("runs/notes") / f"pointer_popularity_{ds}_seed{seed}.json"
    out.write_text(json.dumps({k: float(v.mean()) for k, v in best.items()}, indent=1))


if __name__ == "__main__":
    main()
