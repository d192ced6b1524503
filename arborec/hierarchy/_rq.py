"""Residual-quantisation semantic ids, as an `InterestTree` whose nodes are code prefixes."""

from __future__ import annotations

import numpy as np

from arborec.diagnostics import check_param, logger
from arborec.hierarchy._nodes import check_vectors, codes_from_keys, l2_normalise, node_centroids
from arborec.hierarchy._tree import InterestTree


def residual_codes(vectors: np.ndarray, n_levels: int = 3, codebook_size=32, seed: int = 0,
                   n_init: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """Residual quantisation of L2-normalised vectors: k-means on what the levels above left over.

    Returns ``(ids, codebooks)``: ``ids`` (n_items, n_levels) int64, the raw code of each item at each
    level (level l's codebook index), and ``codebooks[l]`` (codebook_size_l, d) float32, so that
    ``sum_l codebooks[l][ids[:, l]]`` approximates the normalised vectors.
    """
    check_param("n_levels", n_levels, isinstance(n_levels, (int, np.integer)) and n_levels >= 1, "an integer >= 1")
    sizes = [codebook_size] * n_levels if np.isscalar(codebook_size) else list(codebook_size)
    check_param("codebook_size", codebook_size,
                len(sizes) == n_levels and all(int(k) >= 1 for k in sizes),
                f"an integer >= 1 or {n_levels} of them (one per level)")
    from sklearn.cluster import KMeans

    residual = l2_normalise(check_vectors(vectors)).astype(np.float64)
    ids = np.zeros((len(residual), n_levels), dtype=np.int64)
    codebooks = []
    for level, k in enumerate(sizes):
        k = min(int(k), len(np.unique(residual, axis=0)))
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed + level).fit(residual)
        ids[:, level] = km.labels_
        codebooks.append(km.cluster_centers_.astype(np.float32))
        residual = residual - km.cluster_centers_[km.labels_]
        logger.debug("RQ level %d: %d codes, residual norm %.3f", level + 1, k, np.linalg.norm(residual, axis=1).mean())
    return ids, codebooks


def semantic_ids(vectors: np.ndarray, n_levels: int = 3, codebook_size=32, seed: int = 0,
                 n_init: int = 1) -> InterestTree:
    """Residual-quantisation semantic ids as a tree (source ``"rq"``), usable wherever a tree is.

    A node at level l is a distinct prefix of the raw codes (see :func:`residual_codes`), so the
    parent structure holds; several items may share a leaf (collisions are fine). The raw codes of
    a node's items are the same; its label says them (``"rq 12-3"``); ``label_tree`` gives readable ones.
    """
    vectors = check_vectors(vectors)
    ids, codebooks = residual_codes(vectors, n_levels, codebook_size, seed, n_init)
    codes, parents, node_keys = codes_from_keys(ids)
    # The label of a node spells its raw code prefix: walk up the parents.
    labels, prefixes = [], []
    for level in range(n_levels):
        prefix = [(prefixes[level - 1][parents[level][j]] + "-" if level else "") + str(int(k))
                  for j, k in enumerate(node_keys[level])]
        prefixes.append(prefix)
        labels.append([f"rq {p}" for p in prefix])
    meta = {"n_levels": int(n_levels), "codebook_sizes": [len(c) for c in codebooks], "seed": int(seed),
            "n_collisions": int(len(ids) - len(np.unique(ids, axis=0)))}
    return InterestTree(codes=codes, parents=parents, labels=labels,
                        centroids=node_centroids(codes, l2_normalise(vectors)), source="rq", meta=meta)
