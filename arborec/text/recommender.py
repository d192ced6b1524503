"""Text-only recommenders: a user is a recency-weighted mean of their items' text vectors; no interaction training needed."""

from __future__ import annotations

import numpy as np

from arborec.baselines._base import Recommender
from arborec.diagnostics import ConfigError, check_param
from arborec.text._encoder import DEFAULT_MODEL, TextEncoder
from arborec.text._finetune import AdapterConfig, apply_adapter, fit_adapter
from arborec.text._items import encode_items


class TextOnly(Recommender):
    """Ranks items by cosine between their text vector and the user's recency-weighted mean vector.

    Works for brand-new items (true cold start): an item needs only its text.

    Parameters
    ----------
    model : str, default "all-MiniLM-L6-v2"
    backend : str, default "auto"   (see :class:`arborec.text.TextEncoder`)
    decay : float, default 0.7
        Weight of the k-th most recent history item is ``decay ** k`` (1.0: plain mean).
    finetune : bool, default False
        Learn a residual adapter on the vectors from co-occurrence in training sequences.
    seed : int, default 0

    Attributes
    ----------
    item_vectors_ : ndarray (n_items, dim) float32, L2-normalised
    adapter_losses_ : list of float (with finetune)
    """

    name = "text"
    search_space = {"decay": [0.5, 0.7, 0.9]}

    def __init__(self, model: str = DEFAULT_MODEL, backend: str = "auto", decay: float = 0.7,
                 finetune: bool = False, seed: int = 0):
        self.model = model
        self.backend = backend
        self.decay = decay
        self.finetune = finetune
        self.seed = seed

    def fit(self, split, data=None):
        check_param("decay", self.decay, 0 < self.decay <= 1, "a number in (0, 1]")
        if data is None:
            raise ConfigError(f"{type(self).__name__}.fit needs the prepared data (its catalog has the item text)")
        vectors = encode_items(data.catalog, TextEncoder(self.model, backend=self.backend))
        if self.finetune:
            adapter, self.adapter_losses_ = fit_adapter(vectors, split, AdapterConfig(seed=self.seed))
            vectors = apply_adapter(adapter, vectors)
        self.item_vectors_ = vectors
        return self

    def score(self, users, histories):
        self._check_fitted("item_vectors_")
        lengths = histories.lengths()
        rows = np.repeat(np.arange(len(lengths)), lengths)
        # age 0 for the most recent item of each history
        age = np.repeat(histories.indptr[1:], lengths) - 1 - np.arange(len(histories.items))
        weights = (self.decay ** age).astype(np.float32)
        profile = np.zeros((len(lengths), self.item_vectors_.shape[1]), dtype=np.float32)
        np.add.at(profile, rows, weights[:, None] * self.item_vectors_[histories.items])
        return profile @ self.item_vectors_.T


class FineTunedText(TextOnly):
    """The text-only recommender on vectors fine-tuned with co-occurrence in training sequences (see :class:`TextOnly`)."""

    name = "text-ft"

    def __init__(self, model: str = DEFAULT_MODEL, backend: str = "auto", decay: float = 0.7,
                 finetune: bool = True, seed: int = 0):
        super().__init__(model=model, backend=backend, decay=decay, finetune=finetune, seed=seed)
