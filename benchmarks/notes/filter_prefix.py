"""Validation-only trial: BSARec's low-pass filter inside arborec's short-term blocks, where arborec trains on
one prefix per target (Amazon catalogues), so the last position is filtered exactly as in BSARec.

    python benchmarks/notes/filter_prefix.py DATASET SEED MIX C [key=value ...]

Each short-term block mixes ``MIX * filter + (1 - MIX) * attention`` (pre-LN, residual), the filter being
BSARec's made causal (every position t gets what the paper's filter gives the last position of the history
ending at t; for the last position that is the paper's filter itself). MIX 0 is arborec as it is. The
library is not changed: the module is patched here. Prints the best validation NDCG@10 (test never read).
Write-up: benchmarks/notes/filter_in_arborec.md.
"""
import json
import logging
import sys

import torch
from torch import nn

from arborec.baselines.bsarec import low_pass_matrix
from arborec.cli._common import parse_params
from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import evaluate
from arborec.model import ArboRec
from arborec.model import _network
from arborec.sequential import causal_mask


class CausalFrequencyFilter(nn.Module):
    """``low_t = sum_d k[d] x_{t-d}`` with k the last row of BSARec's low-pass matrix read backwards, then
    ``low_t + beta^2 (x_t - low_t)`` (BSARec's filter before its residual and LayerNorm)."""

    def __init__(self, max_len: int, c: int, hidden_size: int):
        super().__init__()
        k = low_pass_matrix(max_len, c)[-1].flip(0).float()  # (max_len,): weight of the item d steps back
        lag = torch.arange(max_len)[:, None] - torch.arange(max_len)[None, :]  # (t, s) -> t - s
        self.register_buffer("toeplitz", torch.where(lag >= 0, k[lag.clamp(min=0)], 0.0), persistent=False)
        self.sqrt_beta = nn.Parameter(torch.randn(hidden_size))

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        W = x.shape[1]
        signal = x * real.unsqueeze(-1)
        low = torch.einsum("ts,bsd->btd", self.toeplitz[-W:, -W:], signal)  # any W x W corner of a Toeplitz
        return low + self.sqrt_beta ** 2 * (signal - low)


def patch(mix: float, c: int) -> None:
    init = _network.ArboRecModule.__init__

    def __init__(self, cfg, *args, **kwargs):
        init(self, cfg, *args, **kwargs)
        self.filters = nn.ModuleList(CausalFrequencyFilter(cfg.max_len, c, cfg.hidden_size)
                                     for _ in range(cfg.n_layers))

    def short_stream(self, seq, table):
        B, W = seq.shape
        real = seq > 0
        pos = torch.arange(self.cfg.max_len - W, self.cfg.max_len, device=seq.device)
        x = self.dropout(self.embed(seq, table) + self.pos_emb(pos)) * real.unsqueeze(-1)
        allowed = causal_mask(real)
        for block, filt in zip(self.blocks, self.filters):
            h = block.ln1(x)
            x = x + mix * self.dropout(filt(h, real)) + (1 - mix) * block.attn(h, allowed)
            x = x + block.ffn(block.ln2(x))
        return self.ln_short(x)

    _network.ArboRecModule.__init__ = __init__
    _network.ArboRecModule.short_stream = short_stream


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    ds, seed, mix, c = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])

    extra = parse_params(sys.argv[5:], "arborec")  # NAME=VALUE, VALUE as JSON when it can be
    if mix > 0:
        patch(mix, c)
    data = load_prepared(ds)
    split = leave_one_out(data)
    m = ArboRec(**({"max_epochs": 100, "eval_every": 2, "seed": seed, "verbose": True} | extra)).fit(split, data)
    print(json.dumps({"dataset": ds, "seed": seed, "mix": mix, "c": c, "params": extra,
                      "best_valid_ndcg10": m.best_valid_ndcg_, "best_epoch": m.best_epoch_,
                      "epoch_seconds": m.epoch_seconds_, "regime": m.regime_,
                      "final_valid_ndcg10": evaluate(m, split, "valid").metrics["ndcg@10"]}))
