"""Turning per-level item keys into an `InterestTree`'s codes and parents, and node centroids."""

from __future__ import annotations

import numpy as np

from arborec.diagnostics import ConfigError


def codes_from_keys(keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Number the nodes of a tree given, for every item, one integer key per level.

    A node at level l is a distinct prefix ``keys[i, :l]``, so the parent structure holds by
    construction. Children of a parent are numbered consecutively, largest first (ties: smaller key
    first), and parents come in their own order: the numbering is deterministic.

    Returns ``(codes, parents, node_keys)`` where ``node_keys[l][j]`` is the key (last prefix element)
    of node ``j`` at level ``l + 1``.
    """
    keys = np.asarray(keys)
    if keys.ndim != 2 or keys.shape[1] < 1:
        raise ConfigError(f"keys must be (n_items, n_levels), got shape {keys.shape}")
    n, L = keys.shape
    codes = np.zeros((n, L), dtype=np.int64)
    parents, node_keys = [], []
    parent_codes = np.zeros(n, dtype=np.int64)
    for level in range(L):
        # A node is (parent node, own key): unique pairs, then ordered (parent, -size, key).
        pairs = np.stack([parent_codes, keys[:, level].astype(np.int64)], axis=1)
        uniq, inverse, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        order = np.lexsort((uniq[:, 1], -counts, uniq[:, 0]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes[:, level] = rank[inverse]
        parents.append(uniq[order, 0].astype(np.int64))
        node_keys.append(uniq[order, 1])
        parent_codes = codes[:, level]
    return codes, parents, node_keys


def node_centroids(codes: np.ndarray, vectors: np.ndarray) -> list[np.ndarray]:
    """L2-normalised mean vector of each node, per level: a list of (n_nodes_l, d) float32 arrays."""
    vectors = np.asarray(vectors, dtype=np.float32)
    out = []
    for level in range(codes.shape[1]):
        n_nodes = int(codes[:, level].max()) + 1 if len(codes) else 0
        sums = np.zeros((n_nodes, vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, codes[:, level], vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        out.append((sums / np.maximum(norms, 1e-12)).astype(np.float32))
    return out


def check_vectors(vectors, name: str = "vectors", n_items: int | None = None) -> np.ndarray:
    """(n, d) finite float32 array, or ConfigError naming what is wrong."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
        raise ConfigError(f"{name} must be a non-empty (n_items, dim) array, got shape {v.shape}")
    if n_items is not None and v.shape[0] != n_items:
        raise ConfigError(f"{name} has {v.shape[0]} rows but there are {n_items} items")
    if not np.isfinite(v).all():
        bad = int(np.flatnonzero(~np.isfinite(v).all(axis=1))[0])
        raise ConfigError(f"{name} has non-finite values (NaN or inf), first in row {bad}")
    return v


def l2_normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norms, 1e-12)).astype(np.float32)
