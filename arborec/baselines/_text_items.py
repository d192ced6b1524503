"""Item representations from frozen language-model vectors, shared by the text-aware sequential baselines.

An item's input (and tied output) vector is built by :class:`TextItemEmbedding`: its ID embedding
(only for items with training events), plus its frozen text vector passed through an adaptor (a
linear projection, or UniSRec's parametric-whitening mixture of experts). It behaves like an
``nn.Embedding``: called on ids it returns their vectors, and ``.weight`` is the whole table, so the
shared training loop and scoring of :class:`arborec.sequential.SequentialRecommender` use
it unchanged. :class:`TextSequentialRecommender` gets the vectors (the same encoder and cache as
:class:`arborec.model.ArboRec`) and knows what to do with a catalogue that has no item text.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from arborec.data import Split, has_item_text, require_item_text
from arborec.diagnostics import ConfigError, logger
from arborec.sequential import SequentialRecommender



class WhiteningMoE(nn.Module):
    """UniSRec's adaptor: sum_k g_k(v) (v - b_k) W_k, with a softmax gate over ``n_experts`` (noisy in training).

    Each expert is a parametric whitening of the text vector (a learned centre ``b_k`` and projection
    ``W_k``); the gate ``softmax(v W_g + noise)`` adds Gaussian noise of learned scale
    ``softplus(v W_n)`` while training (the noisy gating of UniSRec), none at evaluation.
    """

    def __init__(self, text_dim: int, hidden_size: int, n_experts: int = 8, dropout: float = 0.2):
        super().__init__()
        self.centre = nn.Parameter(torch.zeros(n_experts, text_dim))  # (K, d): b_k
        self.proj = nn.Parameter(torch.randn(n_experts, text_dim, hidden_size) * 0.02)  # (K, d, D): W_k
        self.gate = nn.Parameter(torch.zeros(text_dim, n_experts))  # (d, K)
        self.noise = nn.Parameter(torch.zeros(text_dim, n_experts))  # (d, K)
        self.dropout = nn.Dropout(dropout)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        logits = v @ self.gate  # (..., K)
        if self.training:
            logits = logits + torch.randn_like(logits) * (F.softplus(v @ self.noise) + 1e-2)
        g = torch.softmax(logits, dim=-1)  # (..., K)
        v = self.dropout(v)
        # (v - b_k) W_k = v W_k - b_k W_k, every expert in one product
        experts = torch.einsum("...d,kdh->...kh", v, self.proj) - torch.einsum("kd,kdh->kh", self.centre, self.proj)
        return (g.unsqueeze(-1) * experts).sum(-2)  # (..., D)


class TextItemEmbedding(nn.Module):
    """Item ids (any shape, 0 = padding) -> vectors (..., D): ID part + adaptor(frozen text vector).

    Parameters
    ----------
    n_items, hidden_size : catalogue size and width D
    vectors : (n_items, d) float array or None; None: no text part
    id_mask : (n_items,) bool or None; items with an ID part (those with training events); None: no ID part
    adaptor : "linear" (a learned projection d -> D) or "moe" (:class:`WhiteningMoE`)
    n_experts, adaptor_dropout : of the "moe" adaptor

    ``.weight`` is the whole (n_items + 1, D) table, row 0 (padding) zero, as in ``nn.Embedding``.
    """

    def __init__(self, n_items: int, hidden_size: int, vectors: np.ndarray | None, id_mask: np.ndarray | None,
                 adaptor: str = "linear", n_experts: int = 8, adaptor_dropout: float = 0.2):
        super().__init__()
        if vectors is None and id_mask is None:
            raise ConfigError("an item representation needs an ID part, a text part, or both")
        self.n_items = n_items
        self.id_emb = None
        if id_mask is not None:
            self.id_emb = nn.Embedding(n_items + 1, hidden_size, padding_idx=0)
            nn.init.normal_(self.id_emb.weight, std=0.02)
            with torch.no_grad():
                self.id_emb.weight[0].zero_()
            mask = torch.cat([torch.zeros(1), torch.as_tensor(np.asarray(id_mask), dtype=torch.float32)])
            self.register_buffer("id_mask", mask.unsqueeze(-1), persistent=False)  # (n_items + 1, 1)
        self.adaptor = None
        if vectors is not None:
            text = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
            # frozen: a buffer, not a parameter; rebuilt from the recommender's vectors_, so not in the state dict
            self.register_buffer("vectors", torch.cat([text.new_zeros(1, text.shape[1]), text]), persistent=False)
            if adaptor == "linear":
                self.adaptor = nn.Linear(text.shape[1], hidden_size)
                nn.init.normal_(self.adaptor.weight, std=0.02)
                nn.init.zeros_(self.adaptor.bias)
            elif adaptor == "moe":
                self.adaptor = WhiteningMoE(text.shape[1], hidden_size, n_experts, adaptor_dropout)
            else:
                raise ConfigError(f"adaptor={adaptor!r} is not allowed: expected 'linear' or 'moe'")

    _shared: dict | None = None  # inside one_table(): {"table": (n_items + 1, D)} once computed

    @contextmanager
    def one_table(self):
        """Inside: the whole table is computed once (at first use) and both ``weight`` and lookups read it.

        One training step then adapts every item's text once, for its inputs and its output layer alike."""
        self._shared = {}
        try:
            yield self
        finally:
            self._shared = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self._shared is not None:
            return self.weight[ids]  # (..., D)
        return self._lookup(ids)

    def _lookup(self, ids: torch.Tensor) -> torch.Tensor:
        out = 0.0
        if self.id_emb is not None:
            out = self.id_emb(ids) * self.id_mask[ids]  # (..., D): zero for items without training events
        if self.adaptor is not None:
            text = self.adaptor(self.vectors[ids]) * (ids > 0).unsqueeze(-1)  # (..., D), padding stays zero
            out = out + text
        return out

    @property
    def weight(self) -> torch.Tensor:
        """(n_items + 1, D): every item's vector, row 0 = padding (zero)."""
        if self._shared is None:
            return self._lookup(torch.arange(self.n_items + 1, device=self._device()))
        if "table" not in self._shared:
            self._shared["table"] = self._lookup(torch.arange(self.n_items + 1, device=self._device()))
        return self._shared["table"]

    def _device(self) -> torch.device:
        return next(self.parameters()).device


class TextSequentialRecommender(SequentialRecommender):
    """A sequential recommender whose items are read through their text vectors (see :class:`TextItemEmbedding`).

    ``fit(split, data, vectors=None)``: the vectors come from ``vectors``, else from ``data.catalog``
    encoded with ``text_model`` (the same call as :class:`arborec.model.ArboRec`, so both share the
    on-disk vector cache). A catalogue without item text gives ``vectors_ = None``: the model then
    falls back to its ID part (``needs_text`` models raise :class:`ConfigError` instead).

    Attributes after ``fit`` (besides the base class's): ``vectors_`` (n_items, d) float32 or None,
    ``uses_text_`` bool.
    """

    needs_text = False  # True: the model has no ID part and cannot work without item text

    def fit(self, split: Split, data=None, *, vectors: np.ndarray | None = None) -> "TextSequentialRecommender":
        self._check_params()  # before encoding the catalogue
        self.vectors_ = self._item_vectors(split, data, vectors)
        self.uses_text_ = self.vectors_ is not None
        return super().fit(split, data)

    def _loss(self, seq: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, int]:
        with self.module_.item_emb.one_table():  # the item table once per step, for inputs and outputs
            return super()._loss(seq, tgt)

    def score(self, users: np.ndarray, histories, batch_size: int = 1024) -> np.ndarray:
        """(B, n_items) float32, as in the base class; the item table is computed once for all batches."""
        self._check_fitted("module_")
        with self.module_.item_emb.one_table():
            return super().score(users, histories, batch_size)

    def _item_vectors(self, split: Split, data, vectors: np.ndarray | None) -> np.ndarray | None:
        if vectors is None:
            if data is None:
                raise ConfigError(f"{type(self).__name__}.fit needs item vectors: pass vectors=... or the prepared data")
            if not has_item_text(data.catalog):
                if self.needs_text:
                    require_item_text(data, self.name)
                logger.warning("%s: the catalogue has no item text; training on item IDs only", self.name)
                return None
            from arborec.text import TextEncoder, encode_items

            vectors = encode_items(data.catalog, TextEncoder(self.text_model))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != split.n_items:
            raise ConfigError(f"vectors has shape {vectors.shape}, expected one row per item ({split.n_items}, d)")
        return vectors
