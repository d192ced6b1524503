"""ItemKNN: item-item cosine similarity over training co-occurrence, top-k neighbours per item."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from arborec.base import Recommender
from arborec.diagnostics import check_param


class ItemKNN(Recommender):
    """Scores an item by the summed cosine similarity to the items in the user's history.

    Parameters
    ----------
    k : int, default 100
        Neighbours kept per item (the rest of the similarity row is set to 0).
    shrink : float, default 0.0
        Added to the cosine denominator; damps similarities supported by few users.

    Attributes
    ----------
    similarity_ : csr_matrix (n_items, n_items) float32, row i holds item i's neighbours
    """

    name = "itemknn"
    search_space = {"k": [50, 200], "shrink": [0.0, 10.0]}

    def __init__(self, k: int = 100, shrink: float = 0.0):
        self.k = k
        self.shrink = shrink

    def fit(self, split, data=None):
        check_param("k", self.k, int(self.k) >= 1, "an integer >= 1")
        check_param("shrink", self.shrink, self.shrink >= 0, "a number >= 0")
        x = split.train_matrix().astype(np.float32).tocsc()  # (n_users, n_items)
        co = (x.T @ x).tocsr()  # (n_items, n_items) co-occurrence counts
        co.setdiag(0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        if self.shrink:
            co = co.tocoo()
            co.data = co.data / (norms[co.row] * norms[co.col] + self.shrink)
            sim = co.tocsr()
        else:
            xn = normalize(x, axis=0)
            sim = (xn.T @ xn).tocsr()
            sim.setdiag(0)
            sim.eliminate_zeros()
        self.similarity_ = _top_k_rows(sim, int(self.k)).astype(np.float32)
        return self

    def score(self, users, histories):
        self._check_fitted("similarity_")
        h = histories.to_csr(self.similarity_.shape[0])
        return np.asarray((h @ self.similarity_).todense(), dtype=np.float32)


def _top_k_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of every row of a CSR matrix."""
    indptr, indices, data = [0], [], []
    for i in range(m.shape[0]):
        lo, hi = m.indptr[i], m.indptr[i + 1]
        vals, cols = m.data[lo:hi], m.indices[lo:hi]
        if len(vals) > k:
            keep = np.argpartition(-vals, k - 1)[:k]
            vals, cols = vals[keep], cols[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=m.shape)
