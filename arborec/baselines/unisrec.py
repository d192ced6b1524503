"""UniSRec-style peers (Hou et al., KDD 2022): text vectors through a whitening mixture-of-experts adaptor, then SASRec.

Each item's frozen language-model vector (the same MiniLM vectors :class:`arborec.model.ArboRec`
reads) goes through :class:`arborec.baselines._text_items.WhiteningMoE`: ``n_experts`` parametric
whitenings ``(v - b_k) W_k`` mixed by a (noisy, while training) softmax gate. ``unisrec`` adds the
item's ID embedding (UniSRec's transductive setting; items without training events have none),
``unisrec-t`` has no ID embedding at all (the inductive setting: every item, seen or not, is its
text). A SASRec encoder reads the sequence; as in UniSRec, the score is the cosine between the
sequence state and the item vector divided by a temperature.

**Trained from scratch on the target data.** UniSRec pre-trains the adaptor and the encoder on
several source domains first; there is no pre-training corpus here, so this is UniSRec's
architecture and objective fitted on one dataset, not the pre-trained model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from arborec.baselines._text_items import TextItemEmbedding, TextSequentialRecommender
from arborec.baselines.sasrec import SASRecConfig
from arborec.baselines.sasrec_text import TextSASRecModule
from arborec.diagnostics import check_param


class CosineSASRecModule(TextSASRecModule):
    """Hidden states L2-normalised and divided by ``temperature`` (None: returned as they are)."""

    def __init__(self, cfg: SASRecConfig, items: TextItemEmbedding, temperature: float | None):
        super().__init__(cfg, items)
        self.temperature = temperature

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h = super().forward(seq)  # (B, W, D)
        return F.normalize(h, dim=-1) / self.temperature if self.temperature else h


class UniSRec(TextSequentialRecommender):
    """Text vectors -> whitening mixture of experts (+ ID embedding) -> SASRec; cosine / temperature scores.

    Parameters
    ----------
    n_experts : whitening experts of the adaptor (UniSRec: 8)
    adaptor_dropout : dropout on the text vector inside the adaptor (UniSRec: 0.2)
    temperature : float > 0, scores are cos(state, item) / temperature (UniSRec: 0.07); None: dot products
    use_id : add the ID embedding (``unisrec``); False: text only (``unisrec-t``)
    text_model : sentence-transformers model of the item vectors when ``fit`` gets none (ArboRec's default)
    all others : as in :class:`arborec.baselines.SASRec`

    ``fit(split, data, vectors=None)``. A catalogue without item text: ``unisrec`` trains its ID part
    alone, ``unisrec-t`` raises :class:`arborec.diagnostics.ConfigError`.
    """

    name = "unisrec"
    search_space = {"dropout": [0.2, 0.5], "lr": [1e-3, 3e-3], "temperature": [0.05, 0.1]}

    def __init__(self, hidden_size: int = 64, n_layers: int = 2, n_heads: int = 1, max_len: int = 50,
                 n_experts: int = 8, adaptor_dropout: float = 0.2, temperature: float | None = 0.07,
                 use_id: bool = True, dropout: float = 0.2, lr: float = 1e-3, weight_decay: float = 0.0,
                 batch_size: int = 128, max_epochs: int = 200, patience: int = 3, eval_every: int = 2,
                 earlier_windows: bool = False, text_model: str = "all-MiniLM-L6-v2",
                 sampled_above: int = 100_000, n_negatives: int = 2048,
                 seed: int = 0, device: str = "cpu", verbose: bool = False):
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
        self.n_experts = n_experts
        self.adaptor_dropout = adaptor_dropout
        self.temperature = temperature
        self.use_id = use_id
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.eval_every = eval_every
        self.earlier_windows = earlier_windows
        self.text_model = text_model
        self.sampled_above = sampled_above
        self.n_negatives = n_negatives
        self.seed = seed
        self.device = device
        self.verbose = verbose

    @property
    def needs_text(self) -> bool:
        return not self.use_id

    def _check_params(self) -> None:
        super()._check_params()
        check_param("n_experts", self.n_experts, self.n_experts >= 1, "an integer >= 1")
        check_param("adaptor_dropout", self.adaptor_dropout, 0 <= self.adaptor_dropout < 1, "a float in [0, 1)")
        check_param("temperature", self.temperature, self.temperature is None or self.temperature > 0,
                    "a float > 0, or None (dot-product scores)")

    def _build_module(self, n_items: int) -> nn.Module:
        cfg = SASRecConfig(n_items=n_items, max_len=self.max_len, hidden_size=self.hidden_size,
                           n_layers=self.n_layers, n_heads=self.n_heads, dropout=self.dropout)
        items = TextItemEmbedding(n_items, self.hidden_size, self.vectors_,
                                  self.item_counts_ >= 1 if self.use_id else None, adaptor="moe",
                                  n_experts=self.n_experts, adaptor_dropout=self.adaptor_dropout)
        return CosineSASRecModule(cfg, items, self.temperature)

    def _output_items(self) -> torch.Tensor:
        items = super()._output_items()  # (n_items, D)
        return F.normalize(items, dim=-1) if self.temperature else items


class UniSRecText(UniSRec):
    """UniSRec without ID embeddings: every item is its adapted text vector (see :class:`UniSRec`)."""

    name = "unisrec-t"

    def __init__(self, hidden_size: int = 64, n_layers: int = 2, n_heads: int = 1, max_len: int = 50,
                 n_experts: int = 8, adaptor_dropout: float = 0.2, temperature: float | None = 0.07,
                 use_id: bool = False, dropout: float = 0.2, lr: float = 1e-3, weight_decay: float = 0.0,
                 batch_size: int = 128, max_epochs: int = 200, patience: int = 3, eval_every: int = 2,
                 earlier_windows: bool = False, text_model: str = "all-MiniLM-L6-v2",
                 sampled_above: int = 100_000, n_negatives: int = 2048,
                 seed: int = 0, device: str = "cpu", verbose: bool = False):
        super().__init__(hidden_size=hidden_size, n_layers=n_layers, n_heads=n_heads, max_len=max_len,
                         n_experts=n_experts, adaptor_dropout=adaptor_dropout, temperature=temperature,
                         use_id=use_id, dropout=dropout, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                         max_epochs=max_epochs, patience=patience, eval_every=eval_every,
                         earlier_windows=earlier_windows, text_model=text_model, sampled_above=sampled_above,
                         n_negatives=n_negatives, seed=seed, device=device, verbose=verbose)
