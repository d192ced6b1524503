"""Text-only recommenders: a user is a recency-weighted mean of their items' text vectors; no interaction training needed."""

from __future__ import annotations

import numpy as np

from arborec.base import Recommender
from arborec.data import require_item_text
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
    blend : float or None, default None
        With ``finetune``: item vector = normalize(blend * text + (1 - blend) * adapted). None picks
        the adapter epoch and the blend from ``BLENDS`` on validation NDCG@10 (1.0 = the plain text
        vectors, so fine-tuning is only kept when validation says it helps).
    seed : int, default 0

    Attributes
    ----------
    item_vectors_ : ndarray (n_items, dim) float32, L2-normalised
    adapter_losses_ : list of float (with finetune)
    blend_, best_epoch_ : float, int (with finetune) the selected blend and adapter epoch
    valid_ndcg_ : dict (with finetune) validation NDCG@10 per (epoch, blend), on at most 5,000 users
    """

    BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
    VALID_USERS = 5000

    name = "text"
    search_space = {"decay": [0.5, 0.7, 0.9]}

    def __init__(self, model: str = DEFAULT_MODEL, backend: str = "auto", decay: float = 0.7,
                 finetune: bool = False, blend: float | None = None, seed: int = 0):
        self.model = model
        self.backend = backend
        self.decay = decay
        self.finetune = finetune
        self.blend = blend
        self.seed = seed

    def fit(self, split, data=None):
        check_param("decay", self.decay, 0 < self.decay <= 1, "a number in (0, 1]")
        if data is None:
            raise ConfigError(f"{type(self).__name__}.fit needs the prepared data (its catalog has the item text)")
        require_item_text(data, self.name)
        if self.blend is not None:
            check_param("blend", self.blend, 0 <= self.blend <= 1, "a number in [0, 1], or None (chosen on validation)")
        vectors = encode_items(data.catalog, TextEncoder(self.model, backend=self.backend))
        self.item_vectors_ = vectors
        if self.finetune:
            self._fit_adapter(vectors, split)
        return self

    def _fit_adapter(self, raw: np.ndarray, split) -> None:
        """Train the adapter; keep the (epoch, blend) with the best validation NDCG@10."""
        from arborec.evaluate import evaluate

        users = split.eval_users("valid")
        if len(users) > self.VALID_USERS:
            users = np.sort(np.random.default_rng(self.seed).choice(users, self.VALID_USERS, replace=False))
        blends = self.BLENDS if self.blend is None else (self.blend,)
        self.valid_ndcg_, best = {}, (-1.0, None, None, None)

        def select(adapter, epoch):
            nonlocal best
            adapted = apply_adapter(adapter, raw)
            for b in blends:
                mixed = b * raw + (1 - b) * adapted
                self.item_vectors_ = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)
                ndcg = evaluate(self, split, "valid", users=users).metrics["ndcg@10"]
                self.valid_ndcg_[f"epoch {epoch}, blend {b}"] = ndcg
                if ndcg > best[0]:
                    best = (ndcg, epoch, b, self.item_vectors_)
            return max(v for k, v in self.valid_ndcg_.items() if k.startswith(f"epoch {epoch},"))

        _, self.adapter_losses_ = fit_adapter(raw, split, AdapterConfig(seed=self.seed), on_epoch=select)
        _, self.best_epoch_, self.blend_, self.item_vectors_ = best

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
                 finetune: bool = True, blend: float | None = None, seed: int = 0):
        super().__init__(model=model, backend=backend, decay=decay, finetune=finetune, blend=blend, seed=seed)


def finetune_vectors(vectors: np.ndarray, split, seed: int = 0) -> np.ndarray:
    """(n_items, d) text vectors -> the same items' vectors after behaviour fine-tuning on ``split``'s
    training sequences (adapter epoch and blend chosen on validation, as in :class:`FineTunedText`)."""
    model = FineTunedText(seed=seed)
    raw = np.ascontiguousarray(vectors, dtype=np.float32)
    model.item_vectors_ = raw
    model._fit_adapter(raw, split)
    return model.item_vectors_

