"""The tree `ArboRec.fit` uses when it is given none: `arborec.hierarchy.build_tree` when available, else a simple one."""

from __future__ import annotations

import numpy as np

from arborec.diagnostics import ConfigError, logger
from arborec.hierarchy import InterestTree


def default_tree(data, vectors: np.ndarray, source: str = "auto", seed: int = 0, max_levels: int = 3) -> InterestTree:
    """An interest tree for ``data``'s items.

    ``source``: "categories" (the catalogue's category paths), "learned" (k-means on the vectors),
    or "auto" (categories when the paths have at least two levels below a shared root, else learned).
    Uses :func:`arborec.hierarchy.build_tree` when the hierarchy stage provides it; the fallback
    here is a plain version of the same two builders.
    """
    try:
        from arborec.hierarchy import build_tree  # provided by the hierarchy stage
    except ImportError:
        build_tree = None
    paths = _category_paths(data, max_levels) if data is not None else None
    if source == "auto":
        source = "categories" if paths is not None and paths[1] >= 2 else "learned"
    if build_tree is not None:
        return build_tree(data, vectors, source=source)
    if source == "categories":
        if paths is None:
            raise ConfigError("tree_source='categories' needs the prepared data's catalog with category paths")
        return _tree_from_paths(paths[0])
    if source == "learned":
        return _kmeans_tree(vectors, seed=seed)
    raise ConfigError(f"tree_source={source!r} is not allowed: expected 'auto', 'categories' or 'learned'")


def _category_paths(data, max_levels: int):
    """(paths without the root shared by every item, cut to max_levels, padded by repetition; depth) or None."""
    if "category_path" not in data.catalog:
        return None
    raw = [list(p) if p is not None else [] for p in data.catalog["category_path"]]
    while raw and all(len(p) > 1 for p in raw) and len({p[0] for p in raw}) == 1:
        raw = [p[1:] for p in raw]
    depth = min(max((len(p) for p in raw), default=0), max_levels)
    if depth == 0:
        return None
    paths = [(p[:depth] or ["(none)"]) for p in raw]
    paths = [p + [p[-1]] * (depth - len(p)) for p in paths]
    return paths, depth


def _tree_from_paths(paths: list[list[str]]) -> InterestTree:
    depth = len(paths[0])
    codes = np.zeros((len(paths), depth), dtype=np.int64)
    parents, labels = [], []
    for level in range(depth):
        keys = [tuple(p[:level + 1]) for p in paths]
        index = {k: i for i, k in enumerate(sorted(set(keys)))}
        codes[:, level] = [index[k] for k in keys]
        up = {} if level == 0 else {tuple(p[:level]): codes[i, level - 1] for i, p in enumerate(paths)}
        parents.append(np.array([0 if level == 0 else up[k[:-1]] for k in index], dtype=np.int64))
        labels.append([" > ".join(k) if level == 0 else k[-1] for k in index])
    return InterestTree(codes=codes, parents=parents, labels=labels, source="categories")


def _kmeans_tree(vectors: np.ndarray, branching: tuple[int, ...] = (8, 4), seed: int = 0) -> InterestTree:
    """Top-down k-means: ``branching[0]`` clusters, each split into up to ``branching[1]``, ..."""
    from sklearn.cluster import KMeans

    n = len(vectors)
    codes = np.zeros((n, len(branching)), dtype=np.int64)
    parents, labels = [], []
    groups = [np.arange(n)]
    for level, k in enumerate(branching):
        new_groups, par = [], []
        for g_idx, members in enumerate(groups):
            kk = max(1, min(k, len(members)))
            assign = (KMeans(kk, n_init=3, random_state=seed).fit_predict(vectors[members]) if kk > 1
                      else np.zeros(len(members), dtype=np.int64))
            for c in range(kk):
                sel = members[assign == c]
                if len(sel) == 0:
                    continue
                codes[sel, level] = len(new_groups)
                new_groups.append(sel)
                par.append(g_idx)
        parents.append(np.array(par if level else [0] * len(new_groups), dtype=np.int64))
        labels.append([f"L{level + 1}.{j}" for j in range(len(new_groups))])
        groups = new_groups
    logger.info("learned tree (k-means %s): level sizes %s", branching, [len(p) for p in parents])
    return InterestTree(codes=codes, parents=parents, labels=labels, source="learned",
                        meta={"builder": "arborec.model k-means fallback", "branching": list(branching)})
