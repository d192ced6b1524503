"""BSARec (Shin et al., AAAI 2024): SASRec whose blocks mix self-attention with a Fourier low-pass filter.

Each block computes two branches from its input ``x`` (B, L, D) and mixes them with a fixed weight
``alpha``: the *inductive-bias* branch splits ``x`` along the sequence axis into its ``c // 2 + 1``
lowest rFFT frequencies and the rest, rescales the rest by a learned ``beta ** 2`` per channel and
adds the two back (``LayerNorm(x + dropout(low + beta^2 * high))``); the other branch is causal
self-attention (``LayerNorm(x + dropout(attention(x)))``). A position-wise feed-forward layer
follows (post-LN, as in the paper's code).

**Causality and training.** The Fourier filter mixes every position of the sequence with every
other one, the later ones included, so position ``t``'s hidden state is *not* a function of the
items up to ``t`` only (the attention branch is causal, the filter is not). Training at every
position of a window, as :class:`arborec.baselines.SASRec` does, would therefore let position ``t``
read its own target. BSARec is trained as in the paper instead: every target of a user's training
sequence becomes its own example whose input holds only the items before it, and the loss reads the
last position only (:func:`arborec.sequential.prefix_windows`). Scoring reads the last
position of the history, which has no future. The price is compute: a history of ``n`` items costs
about ``n^2 / 2`` positions per epoch instead of ``n``.

**The filter on left-padded sequences.** The paper pads every sequence to ``max_len`` and runs the
FFT over all ``max_len`` positions. Here the filter is the same linear map written as a
(max_len, max_len) matrix (computed once with ``torch.fft`` on the identity); a batch trimmed to
width W uses its bottom-right (W, W) block, which is exactly the length-``max_len`` FFT filter of the
sequence left-padded with zeros. Padding positions are set to zero before the filter, so a real
position's state depends on the user's items only, and the amount of left padding changes nothing.
(In the paper's code the padding positions carry their position embedding into the filter; that is
the one deliberate difference.) The empty-history example of each user (first item, no input) is
not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from arborec.baselines.sasrec import CausalSelfAttention
from arborec.diagnostics import check_param
from arborec.sequential import SequentialRecommender, causal_mask, init_weights


@dataclass
class BSARecConfig:
    n_items: int  # catalogue size; the embedding table has n_items + 1 rows (row 0 = padding)
    max_len: int = 50  # the filter's FFT length and the longest input
    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 1
    ffn_mult: int = 4  # feed-forward inner width = ffn_mult * hidden_size (the paper: 4)
    dropout: float = 0.5  # on embeddings, attention weights and every residual branch
    alpha: float = 0.7  # weight of the filter branch; 1 - alpha goes to self-attention
    c: int = 5  # the filter keeps the c // 2 + 1 lowest rFFT frequencies (the paper's c)


def low_pass_matrix(length: int, c: int) -> torch.Tensor:
    """(length, length) real P with ``P @ x`` = irfft(rfft(x) with only the c // 2 + 1 lowest bins kept), along dim 0."""
    spectrum = torch.fft.rfft(torch.eye(length, dtype=torch.float64), dim=0, norm="ortho")  # (length // 2 + 1, length)
    spectrum[c // 2 + 1:] = 0
    return torch.fft.irfft(spectrum, n=length, dim=0, norm="ortho").float()  # column s: response to an impulse at s


class FrequencyFilter(nn.Module):
    """LayerNorm(x + dropout(low + beta^2 * high)): the Fourier split of the sequence, high part rescaled."""

    def __init__(self, cfg: BSARecConfig):
        super().__init__()
        self.register_buffer("low_pass", low_pass_matrix(cfg.max_len, cfg.c), persistent=False)  # (max_len, max_len)
        self.sqrt_beta = nn.Parameter(torch.randn(cfg.hidden_size))  # (D,), squared: beta >= 0
        self.dropout = nn.Dropout(cfg.dropout)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=1e-12)

    def forward(self, x: torch.Tensor, real: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, W, D) -> (B, W, D), or (B, 1, D) for the last position only."""
        W = x.shape[1]
        rows = 1 if last_only else W
        signal = x * real.unsqueeze(-1)  # (B, W, D): padding is zero, as if padded to max_len with zeros
        low = torch.einsum("ts,bsd->btd", self.low_pass[-rows:, -W:], signal)  # (B, rows, D)
        mixed = low + self.sqrt_beta ** 2 * (signal[:, -rows:] - low)
        return self.norm(x[:, -rows:] + self.dropout(mixed))


class FeedForward(nn.Module):
    """LayerNorm(x + dropout(W2 gelu(W1 x))), post-LN as in the paper."""

    def __init__(self, cfg: BSARecConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.hidden_size, cfg.ffn_mult * cfg.hidden_size)
        self.out = nn.Linear(cfg.ffn_mult * cfg.hidden_size, cfg.hidden_size)
        self.dropout = nn.Dropout(cfg.dropout)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.out(F.gelu(self.fc(x)))))  # (B, W, D)


class BSARecBlock(nn.Module):
    def __init__(self, cfg: BSARecConfig):
        super().__init__()
        self.alpha = cfg.alpha
        self.filter = FrequencyFilter(cfg)
        self.attn = CausalSelfAttention(cfg)  # reads hidden_size, n_heads, dropout
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=1e-12)
        self.ffn = FeedForward(cfg)

    def forward(self, x: torch.Tensor, real: torch.Tensor, allowed: torch.Tensor, last_only: bool = False):
        """(B, W, D) -> (B, W, D), or (B, 1, D) for the last position only."""
        rows = 1 if last_only else x.shape[1]
        inductive = self.filter(x, real, last_only)  # (B, rows, D), sees the whole input sequence
        attended = self.attn_norm(x[:, -rows:] + self.attn(x, allowed, last_only))  # (B, rows, D), causal
        return self.ffn(self.alpha * inductive + (1 - self.alpha) * attended)


class BSARecModule(nn.Module):
    """Left-padded item ids (B, W) -> hidden states (B, W, D). The last position sees the whole input;
    earlier positions see later ones too (through the filter): train on the last position only."""

    def __init__(self, cfg: BSARecConfig):
        super().__init__()
        self.cfg = cfg
        self.item_emb = nn.Embedding(cfg.n_items + 1, cfg.hidden_size, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.hidden_size)  # counted from the right: the last item has max_len-1
        self.emb_norm = nn.LayerNorm(cfg.hidden_size, eps=1e-12)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(BSARecBlock(cfg) for _ in range(cfg.n_layers))
        self.apply(init_weights)

    def forward(self, seq: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, W) ids -> (B, W, D); with ``last_only`` (B, 1, D): the last block computes the last position only."""
        B, W = seq.shape
        assert W <= self.cfg.max_len, f"sequence length {W} > max_len {self.cfg.max_len}"
        real = seq > 0  # (B, W)
        pos = torch.arange(self.cfg.max_len - W, self.cfg.max_len, device=seq.device)  # (W,)
        x = self.dropout(self.emb_norm(self.item_emb(seq) + self.pos_emb(pos))) * real.unsqueeze(-1)  # (B, W, D)
        allowed = causal_mask(real)  # (B, 1, W, W): real keys <= t, and itself
        for i, block in enumerate(self.blocks):
            x = block(x, real, allowed, last_only and i == len(self.blocks) - 1)  # (B, W, D) or (B, 1, D)
        return x[:, -1:] if last_only else x


class BSARec(SequentialRecommender):
    """Beyond Self-Attention: SASRec with a Fourier low-pass / high-pass rescaling branch in every block.

    Defaults are the paper's Beauty settings (hidden 64, 2 layers, 1 head, max_len 50, dropout 0.5,
    lr 5e-4, batch 256, alpha 0.7, c 5). Trained with full-softmax cross-entropy on the last position
    of one example per target (see the module docstring: the filter is not causal).

    Parameters
    ----------
    hidden_size, n_layers, n_heads : model width, blocks, attention heads
    max_len : the most recent ``max_len`` items of a history are read; also the filter's FFT length
    alpha : float in [0, 1], weight of the filter branch (1 - alpha: self-attention)
    c : int >= 1, the filter keeps the ``c // 2 + 1`` lowest frequencies of the length-``max_len`` rFFT
    dropout, lr, weight_decay, batch_size, max_epochs, patience, eval_every, earlier_windows,
    sampled_above, n_negatives, seed, device, verbose : as in :class:`arborec.baselines.SASRec`
        (``earlier_windows``: every target of the training sequence is an example, not only the last
        ``max_len``)
    """

    name = "bsarec"
    search_space = {"dropout": [0.3, 0.5], "lr": [5e-4, 1e-3], "alpha": [0.3, 0.5, 0.7, 0.9], "c": [1, 3, 5, 7, 9]}

    def __init__(self, hidden_size: int = 64, n_layers: int = 2, n_heads: int = 1, max_len: int = 50,
                 alpha: float = 0.7, c: int = 5, dropout: float = 0.5, lr: float = 5e-4, weight_decay: float = 0.0,
                 batch_size: int = 256, max_epochs: int = 200, patience: int = 5, eval_every: int = 2,
                 earlier_windows: bool = False, sampled_above: int = 100_000, n_negatives: int = 2048,
                 seed: int = 0, device: str = "cpu", verbose: bool = False):
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
        self.alpha = alpha
        self.c = c
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.eval_every = eval_every
        self.earlier_windows = earlier_windows
        self.sampled_above = sampled_above
        self.n_negatives = n_negatives
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        check_param("alpha", self.alpha, 0.0 <= self.alpha <= 1.0, "a float in [0, 1]")
        check_param("c", self.c, isinstance(self.c, (int, np.integer)) and self.c >= 1 and self.c // 2 <= self.max_len // 2,
                    f"an integer >= 1 with c // 2 + 1 <= max_len // 2 + 1 = {self.max_len // 2 + 1}")
        check_param("hidden_size/n_heads", (self.hidden_size, self.n_heads), self.hidden_size % self.n_heads == 0,
                    "hidden_size a multiple of n_heads")

    def _training_regime(self) -> str:
        return "prefix"  # its filter sees later positions: every target needs an input of its own

    def _loss(self, seq: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Cross-entropy of the last position only (every prefix pair has its target there)."""
        h = self.module_(seq, last_only=True)[:, 0]  # (B, D)
        return self._output_loss(h, self._output_items(), tgt[:, -1] - 1), int(h.shape[0])

    def _last_hidden(self, seq: torch.Tensor) -> torch.Tensor:
        return self.module_(seq, last_only=True)[:, 0]  # (B, D)

    def _build_module(self, n_items: int) -> nn.Module:
        return BSARecModule(BSARecConfig(n_items=n_items, max_len=self.max_len, hidden_size=self.hidden_size,
                                         n_layers=self.n_layers, n_heads=self.n_heads, dropout=self.dropout,
                                         alpha=self.alpha, c=self.c))
