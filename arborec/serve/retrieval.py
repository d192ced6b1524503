"""Item retrieval with faiss: exact inner-product search for small catalogues, HNSW beyond a size threshold."""

from __future__ import annotations

import numpy as np

from arborec.diagnostics import check_param

#: Catalogues up to this size are searched exactly (IndexFlatIP); larger ones with HNSW.
HNSW_THRESHOLD = 200_000


class ItemIndex:
    """Inner-product search over item vectors that can grow (new items are appended).

    Parameters
    ----------
    vectors : (n_items, d) float32
    hnsw_threshold : int, default 200_000
        At or above this many items the index is HNSW (approximate, sub-linear), below it exact.
    hnsw_m, ef_search : HNSW graph degree and search breadth

    Attributes
    ----------
    kind_ : "flat" or "hnsw"
    """

    def __init__(self, vectors: np.ndarray, hnsw_threshold: int = HNSW_THRESHOLD, hnsw_m: int = 32,
                 ef_search: int = 128):
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        check_param("vectors", vectors.shape, vectors.ndim == 2 and vectors.shape[1] > 0, "a (n_items, d) array")
        d = vectors.shape[1]
        if len(vectors) >= hnsw_threshold:
            self.index_ = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index_.hnsw.efSearch = ef_search
            self.kind_ = "hnsw"
        else:
            self.index_ = faiss.IndexFlatIP(d)
            self.kind_ = "flat"
        self.index_.add(vectors)

    @property
    def n_items(self) -> int:
        return int(self.index_.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append items (their indices continue from ``n_items``)."""
        self.index_.add(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.index_.d))

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items with the largest inner product with ``query`` (d,), skipping ``exclude``.

        Returns (items (<= k,) int64, scores (<= k,) float32), best first.
        """
        exclude = np.unique(exclude) if exclude is not None and len(exclude) else np.zeros(0, dtype=np.int64)
        fetch = min(self.n_items, k + len(exclude))
        if fetch <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, ids = self.index_.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), fetch)
        ids, scores = ids[0], scores[0]
        keep = (ids >= 0) & ~np.isin(ids, exclude)
        return ids[keep][:k].astype(np.int64), scores[keep][:k]


def top_k_dense(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of a dense (n_items,) score vector, skipping ``exclude``; best first."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.argsort(-scores[part], kind="stable")]
    return order.astype(np.int64), scores[order]
