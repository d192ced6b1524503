"""A learned `InterestTree`: recursive clustering of item vectors (text, optionally blended with behaviour)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from arborec.diagnostics import NotFittedError, check_param, logger
from arborec.hierarchy._nodes import check_vectors, codes_from_keys, l2_normalise, node_centroids
from arborec.hierarchy._tree import InterestTree

METHODS = ("kmeans", "ward")


class TreeLearner:
    """Learn an interest tree by clustering item vectors top-down, level by level.

    Every node is split into (up to) ``branching[l]`` children by clustering its items' vectors;
    every item is assigned at every level (there is no outlier bucket). Vectors are L2-normalised
    first, so Euclidean k-means ranks like cosine (spherical) k-means.

    Parameters
    ----------
    branching : tuple of int, default (8, 4, 4)
        Children per node at each level; its length is the depth. A node with fewer distinct items
        than the branching gets one child per distinct item.
    method : {"kmeans", "ward"}, default "ward"
        How a node is split. "kmeans": k-means with ``n_init`` restarts. "ward": k-means into a
        fine codebook of ``codebook_size`` centroids, then Ward agglomeration of the codebook into
        the children (items follow their centroid). Ward on a codebook is both more accurate on
        sentence vectors and much more stable across seeds than plain k-means (see
        benchmarks/results/tree_amazon-beauty.md).
    codebook_size : int, default 256
        Codebook per node for "ward" (a node with fewer items is agglomerated item by item).
    n_init : int, default 4
        k-means restarts (the best inertia is kept).
    pca_dim : int or None, default None
        Project onto this many principal components (fit on all items) before clustering.
    seed : int, default 0
        Seeds every k-means (per node, derived from the seed and the node's position).
    progress : bool, default False
        Show a progress bar over nodes.

    Attributes
    ----------
    tree_ : InterestTree        the learned tree (source "learned"), centroids from the given vectors
    keys_ : (n_items, L) int64  each item's child index within its parent, per level
    """

    def __init__(self, branching=(8, 4, 4), method: str = "ward", codebook_size: int = 256, n_init: int = 4,
                 pca_dim: int | None = None, seed: int = 0, progress: bool = False):
        self.branching = branching
        self.method = method
        self.codebook_size = codebook_size
        self.n_init = n_init
        self.pca_dim = pca_dim
        self.seed = seed
        self.progress = progress

    def _validate(self) -> tuple[int, ...]:
        b = self.branching
        ok = isinstance(b, (list, tuple)) and len(b) >= 1 and all(
            isinstance(k, (int, np.integer)) and k >= 1 for k in b)
        check_param("branching", b, ok, "a non-empty tuple of integers >= 1 (children per node, one per level)")
        check_param("method", self.method, self.method in METHODS, " or ".join(map(repr, METHODS)))
        check_param("codebook_size", self.codebook_size, self.codebook_size >= 2, "an integer >= 2")
        check_param("n_init", self.n_init, self.n_init >= 1, "an integer >= 1")
        check_param("pca_dim", self.pca_dim, self.pca_dim is None or self.pca_dim >= 1, "None or an integer >= 1")
        return tuple(int(k) for k in b)

    def fit(self, vectors: np.ndarray) -> "TreeLearner":
        """Cluster ``vectors`` ((n_items, d), finite) into the tree; sets ``tree_`` and ``keys_``."""
        branching = self._validate()
        raw = check_vectors(vectors)
        X = l2_normalise(raw)
        if self.pca_dim is not None and self.pca_dim < X.shape[1]:
            from sklearn.decomposition import PCA

            X = l2_normalise(PCA(self.pca_dim, random_state=self.seed).fit_transform(X))
        n, L = X.shape[0], len(branching)
        keys = np.zeros((n, L), dtype=np.int64)
        groups = [np.arange(n)]  # items of each node at the current level
        bar = tqdm(total=sum(int(np.prod(branching[:level])) for level in range(L)), disable=not self.progress,
                   desc="tree nodes")
        for level, k in enumerate(branching):
            next_groups = []
            for node, items in enumerate(groups):
                child = self._split(X[items], k, seed=_node_seed(self.seed, level, node))
                keys[items, level] = child
                next_groups += [items[child == c] for c in range(int(child.max()) + 1)]
                bar.update(1)
            groups = next_groups
        bar.close()
        codes, parents, _ = codes_from_keys(keys)
        labels = [[f"L{level + 1}-{j}" for j in range(len(p))] for level, p in enumerate(parents)]
        meta = {"branching": list(branching), "method": self.method, "codebook_size": self.codebook_size,
                "n_init": self.n_init, "pca_dim": self.pca_dim, "seed": self.seed}
        self.keys_ = keys
        self.tree_ = InterestTree(codes=codes, parents=parents, labels=labels,
                                  centroids=node_centroids(codes, l2_normalise(raw)), source="learned", meta=meta)
        logger.info("learned tree: level sizes %s (%s, seed %d)", self.tree_.level_sizes, self.method, self.seed)
        return self

    def _split(self, X: np.ndarray, k: int, seed: int) -> np.ndarray:
        """(n,) child index in [0, k') of each row, k' <= k, every child non-empty, numbered 0..k'-1."""
        n_distinct = len(np.unique(X, axis=0)) if len(X) <= 4 * k else k
        k = min(k, n_distinct)
        if k <= 1:
            return np.zeros(len(X), dtype=np.int64)
        if self.method == "kmeans" or len(X) <= k:
            labels = _kmeans(X, k, self.n_init, seed)[0]
        else:
            labels = _ward_on_codebook(X, k, self.codebook_size, self.n_init, seed)
        _, labels = np.unique(labels, return_inverse=True)  # drop empty clusters, renumber
        return labels.reshape(-1).astype(np.int64)

    def check_fitted(self) -> None:
        if not hasattr(self, "tree_"):
            raise NotFittedError("TreeLearner is not fitted: call fit(vectors) first")


def _node_seed(seed: int, level: int, node: int) -> int:
    return int(np.random.SeedSequence([seed, level, node]).generate_state(1)[0])


def _kmeans(X: np.ndarray, k: int, n_init: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
    return km.labels_, km.cluster_centers_


def _ward_on_codebook(X: np.ndarray, k: int, codebook_size: int, n_init: int, seed: int) -> np.ndarray:
    """Ward agglomeration of a k-means codebook into k groups; each item takes its centroid's group."""
    from sklearn.cluster import AgglomerativeClustering

    if len(X) > codebook_size:
        assign, centres = _kmeans(X, codebook_size, 1 if n_init <= 1 else 2, seed)
    else:
        assign, centres = np.arange(len(X)), X
    groups = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(centres)
    return groups[assign]


def learn_tree(vectors: np.ndarray, branching=(8, 4, 4), seed: int = 0, method: str = "ward",
               collab: np.ndarray | None = None, collab_weight: float = 0.0, **kw) -> InterestTree:
    """Learn an interest tree from item vectors: ``TreeLearner(branching, ...).fit(vectors).tree_``.

    With ``collab`` (item vectors learned from interactions, e.g. :func:`collaborative_vectors`) and
    ``collab_weight`` w in [0, 1], clustering runs on :func:`blend_vectors` (cosine = (1 - w) text
    cosine + w behaviour cosine); node centroids stay in the text space of ``vectors``.
    """
    check_param("collab_weight", collab_weight, 0.0 <= collab_weight <= 1.0, "a number in [0, 1]")
    vectors = check_vectors(vectors)
    X = vectors
    if collab is not None and collab_weight > 0:
        X = blend_vectors(vectors, collab, collab_weight)
    learner = TreeLearner(branching=branching, method=method, seed=seed, **kw).fit(X)
    tree = learner.tree_
    tree.centroids = node_centroids(tree.codes, l2_normalise(vectors))
    tree.meta["collab_weight"] = float(collab_weight) if collab is not None else 0.0
    return tree


def collaborative_vectors(train_matrix: sp.spmatrix, dim: int = 64, seed: int = 0) -> np.ndarray:
    """(n_items, dim) L2-normalised item factors from a (n_users, n_items) interaction matrix.

    Truncated SVD of the item-user matrix with each user's row scaled by 1/sqrt(history length) (so
    heavy users do not dominate). Items without training interactions get a zero vector.
    """
    from sklearn.decomposition import TruncatedSVD

    check_param("dim", dim, dim >= 1, "an integer >= 1")
    M = sp.csr_matrix(train_matrix, dtype=np.float32)
    M.data[:] = 1.0
    lengths = np.asarray(M.sum(axis=1)).ravel()
    M = sp.diags(1.0 / np.sqrt(np.maximum(lengths, 1.0))).astype(np.float32) @ M
    dim = min(dim, min(M.shape) - 1)
    factors = TruncatedSVD(dim, random_state=seed).fit_transform(M.T.tocsr())  # (n_items, dim)
    return l2_normalise(factors)


def blend_vectors(text: np.ndarray, collab: np.ndarray, weight: float) -> np.ndarray:
    """Concatenate sqrt(1 - w) * text and sqrt(w) * collab (each L2-normalised): the dot product of two
    blended vectors is (1 - w) text cosine + w collab cosine. Zero collab rows leave text alone."""
    check_param("weight", weight, 0.0 <= weight <= 1.0, "a number in [0, 1]")
    text = l2_normalise(check_vectors(text, "text vectors"))
    collab = l2_normalise(check_vectors(collab, "collaborative vectors", n_items=len(text)))
    return np.hstack([np.sqrt(1 - weight) * text, np.sqrt(weight) * collab]).astype(np.float32)
