"""EASE (Steck 2019): a closed-form item-item linear autoencoder with a zero diagonal."""

from __future__ import annotations

import numpy as np
import torch

from arborec.base import Recommender
from arborec.diagnostics import check_param


class EASE(Recommender):
    """B = I - P / diag(P) with P = (X^T X + l2 I)^-1; a user's scores are ``history @ B``.

    Parameters
    ----------
    l2 : float, default 200.0
        Ridge penalty on the item-item weights (larger for denser data).

    Attributes
    ----------
    weights_ : ndarray (n_items, n_items) float32, zero diagonal
    """

    name = "ease"
    search_space = {"l2": [50.0, 200.0, 800.0]}

    def __init__(self, l2: float = 200.0):
        self.l2 = l2

    def fit(self, split, data=None):
        check_param("l2", self.l2, self.l2 > 0, "a number > 0")
        x = split.train_matrix()
        gram = torch.from_numpy((x.T @ x).toarray().astype(np.float64))  # (n_items, n_items)
        gram.diagonal().add_(self.l2)
        p = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        b = -p / p.diagonal()[None, :]
        b.diagonal().zero_()
        # cholesky_inverse returns column-major memory; scoring gathers rows, 20x faster row-major.
        self.weights_ = np.ascontiguousarray(b.to(torch.float32).numpy())
        return self

    def score(self, users, histories):
        self._check_fitted("weights_")
        h = histories.to_csr(self.weights_.shape[0])
        return np.asarray(h @ self.weights_, dtype=np.float32)
