"""Validation-only diagnosis: which part of BSARec's recipe makes it beat SASRec on Amazon Sports?

    python benchmarks/notes/training_regime.py VARIANT DATASET [SEED] [key=value ...]

Variants: ``sasrec`` (every position of each user's window is a target, the suite's regime),
``sasrec-prefix`` (one example per target holding only the items before it, loss on the last position:
BSARec's regime), ``sasrec-rel`` (the suite's regime, with a learned attention bias per distance to the
query instead of absolute positions, so each position computes what it would as the last item of its
prefix), ``bsarec`` (pass ``alpha=0.0`` for BSARec without its filter), ``arborec`` (its own
``regime``, ``use_heads``... as key=value). Prints the best validation
NDCG@10 (the test split is never read). Write-up: benchmarks/notes/training_regime.md.
"""
import json
import logging
import math
import sys

import torch
from torch import nn

from arborec.model import ArboRec
from arborec.baselines import BSARec, SASRec, SASRecPrefix
from arborec.baselines.sasrec import SASRecConfig, SASRecModule
from arborec.cli._common import parse_params
from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import evaluate
from arborec.sequential import causal_mask


class RelSASRecModule(SASRecModule):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.dist_bias = nn.Embedding(cfg.max_len, cfg.n_heads)
        nn.init.zeros_(self.dist_bias.weight)

    def forward(self, seq):
        B, L = seq.shape
        real = seq > 0
        x = self.dropout(self.item_emb(seq) * math.sqrt(self.cfg.hidden_size)) * real.unsqueeze(-1)
        allowed = causal_mask(real)  # (B, 1, L, L)
        t = torch.arange(L, device=seq.device)
        dist = (t[:, None] - t[None, :]).clamp(0, self.cfg.max_len - 1)  # (L, L) distance to the query
        mask = self.dist_bias(dist).permute(2, 0, 1).unsqueeze(0).masked_fill(~allowed, float("-inf"))
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)


class SASRecRel(SASRec):
    def _build_module(self, n_items):
        return RelSASRecModule(SASRecConfig(n_items=n_items, max_len=self.max_len, hidden_size=self.hidden_size,
                                            n_layers=self.n_layers, n_heads=self.n_heads, dropout=self.dropout))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    variant, ds = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    extra = parse_params(sys.argv[4:], variant)  # NAME=VALUE, VALUE as JSON when it can be
    cls = {"sasrec": SASRec, "sasrec-prefix": SASRecPrefix, "sasrec-rel": SASRecRel, "bsarec": BSARec, "arborec": ArboRec}[variant]
    data = load_prepared(ds)
    split = leave_one_out(data)
    m = cls(**({"max_epochs": 100, "eval_every": 2, "seed": seed, "verbose": True} | extra)).fit(split, data)
    print(json.dumps({"variant": variant, "dataset": ds, "seed": seed, "params": extra,
                      "best_valid_ndcg10": m.best_valid_ndcg_, "best_epoch": m.best_epoch_,
                      "epoch_seconds": m.epoch_seconds_, "defaults": getattr(m, "defaults_", None),
                      # arborec: after its text weight and pointer are chosen (what a suite record's valid holds)
                      "final_valid_ndcg10": evaluate(m, split, "valid").metrics["ndcg@10"]}))
