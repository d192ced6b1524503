"""SASRec with text: each item is its ID embedding plus a learned projection of its frozen language-model vector.

The common "LLM embeddings into SASRec" recipe, reading the very same MiniLM vectors as
:class:`arborec.model.ArboRec`, so that a comparison with it is about the model, not the side
information. Items without training events have no ID part: they are their projected text alone.
The output layer is tied to the same item representation.
"""

from __future__ import annotations

from torch import nn

from arborec.baselines._text_items import TextItemEmbedding, TextSequentialRecommender
from arborec.baselines.sasrec import SASRecConfig, SASRecModule


class TextSASRecModule(SASRecModule):
    """:class:`arborec.baselines.sasrec.SASRecModule` whose ``item_emb`` is a :class:`TextItemEmbedding`."""

    def __init__(self, cfg: SASRecConfig, items: TextItemEmbedding):
        super().__init__(cfg)
        self.item_emb = items  # replaces the plain ID table (inputs and tied outputs)


class SASRecText(TextSequentialRecommender):
    """SASRec whose item vector is ID embedding + W . text vector (frozen), trained like SASRec.

    Parameters
    ----------
    text_model : sentence-transformers model of the item vectors when ``fit`` gets none (ArboRec's default)
    all others : as in :class:`arborec.baselines.SASRec`

    ``fit(split, data, vectors=None)``; a catalogue without item text trains the ID part alone (= SASRec).

    Attributes after ``fit``: those of :class:`arborec.baselines.SASRec`, and ``vectors_``, ``uses_text_``.
    """

    name = "sasrec-text"
    search_space = {"dropout": [0.2, 0.5], "n_layers": [1, 2], "lr": [1e-3, 3e-3]}

    def __init__(self, hidden_size: int = 64, n_layers: int = 2, n_heads: int = 1, max_len: int = 50,
                 dropout: float = 0.2, lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 128,
                 max_epochs: int = 200, patience: int = 3, eval_every: int = 2, earlier_windows: bool = False,
                 text_model: str = "all-MiniLM-L6-v2", sampled_above: int = 100_000, n_negatives: int = 2048,
                 seed: int = 0, device: str = "cpu", verbose: bool = False):
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
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

    def _build_module(self, n_items: int) -> nn.Module:
        cfg = SASRecConfig(n_items=n_items, max_len=self.max_len, hidden_size=self.hidden_size,
                           n_layers=self.n_layers, n_heads=self.n_heads, dropout=self.dropout)
        items = TextItemEmbedding(n_items, self.hidden_size, self.vectors_, self.item_counts_ >= 1, adaptor="linear")
        return TextSASRecModule(cfg, items)
