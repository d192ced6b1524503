"""MostPop: every user gets the items with the most training events."""

from __future__ import annotations

import numpy as np

from arborec.base import Recommender


class MostPop(Recommender):
    """Scores each item by its number of training interactions.

    Attributes
    ----------
    counts_ : ndarray (n_items,) float32
    """

    name = "mostpop"

    def __init__(self):
        pass

    def fit(self, split, data=None):
        self.counts_ = split.item_train_counts().astype(np.float32)
        return self

    def score(self, users, histories):
        self._check_fitted("counts_")
        return np.broadcast_to(self.counts_, (len(users), len(self.counts_)))
