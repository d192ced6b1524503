"""GRU4Rec (Hidasi et al., 2016): a recurrent network over the item sequence.

Embedding -> GRU layers -> output tied to the item embedding, trained like SASRec with a
full-softmax cross-entropy at every position (see :mod:`arborec.sequential`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from arborec.sequential import SequentialRecommender


@dataclass
class GRU4RecConfig:
    n_items: int  # catalogue size; the embedding table has n_items + 1 rows (row 0 = padding)
    hidden_size: int = 128  # D: item embedding and GRU state size (equal, for the tied output)
    n_layers: int = 1  # stacked GRU layers
    dropout: float = 0.3  # on the embeddings, between GRU layers, and on the output states


class GRU4RecModule(nn.Module):
    """Left-padded item ids (B, L) -> hidden states (B, L, D); the GRU never sees the padding."""

    def __init__(self, cfg: GRU4RecConfig):
        super().__init__()
        self.cfg = cfg
        self.item_emb = nn.Embedding(cfg.n_items + 1, cfg.hidden_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.n_layers, batch_first=True,
                          dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        self.out_dropout = nn.Dropout(cfg.dropout)
        # embeddings of norm ~1: much smaller ones (0.02) leave the GRU's input near zero and learning stalls
        nn.init.normal_(self.item_emb.weight, mean=0.0, std=cfg.hidden_size ** -0.5)
        nn.init.zeros_(self.item_emb.weight[0])

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        B, L = seq.shape
        lengths = (seq > 0).sum(1).clamp(min=1)  # (B,), an empty row keeps one padding step
        # left-padded -> right-padded, so that packing skips the padding
        cols = torch.arange(L, device=seq.device)  # (L,)
        src = (cols[None, :] + (L - lengths)[:, None]) % L  # (B, L): row b starts at its first real item
        x = self.emb_dropout(self.item_emb(seq.gather(1, src)))  # (B, L, D), right-padded
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.gru(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=L)  # (B, L, D), right-padded
        # right-padded -> left-padded again
        back = (cols[None, :] - (L - lengths)[:, None]) % L  # (B, L)
        h = h.gather(1, back.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # (B, L, D)
        return self.out_dropout(h)


class GRU4Rec(SequentialRecommender):
    """Session-based recurrent recommender, trained with full-softmax cross-entropy.

    Parameters
    ----------
    hidden_size, n_layers : GRU state size (= item embedding size) and stacked layers
    max_len : the most recent ``max_len`` items of a history are used
    dropout : dropout on embeddings, between layers and on the outputs
    lr, weight_decay, batch_size : AdamW learning rate, decoupled weight decay, sequences per step
    max_epochs, patience, eval_every : training stops after ``patience`` validation checks (one
        every ``eval_every`` epochs) without a better NDCG@10; the best weights are kept
    earlier_windows : also train on the windows of ``max_len`` before the most recent one
    sampled_above, n_negatives : catalogues larger than ``sampled_above`` items train with a sampled
        softmax over ``n_negatives`` shared negatives (popularity-drawn, log-q corrected)
    seed : seeds torch and the shuffling; the same seed gives the same model
    device : "cpu" or "cuda"
    verbose : progress bar and one line per validation
    """

    name = "gru4rec"
    search_space = {"hidden_size": [64, 128], "dropout": [0.2, 0.5]}

    def __init__(self, hidden_size: int = 128, n_layers: int = 1, max_len: int = 50, dropout: float = 0.3,
                 lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 128, max_epochs: int = 200,
                 patience: int = 3, eval_every: int = 2, earlier_windows: bool = False, sampled_above: int = 100_000, n_negatives: int = 2048,
                 seed: int = 0,
                 device: str = "cpu", verbose: bool = False):
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.max_len = max_len
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

    def _build_module(self, n_items: int) -> nn.Module:
        return GRU4RecModule(GRU4RecConfig(n_items=n_items, hidden_size=self.hidden_size,
                                           n_layers=self.n_layers, dropout=self.dropout))
