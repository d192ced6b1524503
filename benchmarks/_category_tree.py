"""Stand-in for `arborec.hierarchy.tree_from_categories` (branch `hier`) until it is merged: a tree from category paths."""

from __future__ import annotations

import numpy as np

from arborec.hierarchy import InterestTree


def category_tree(catalog, drop_constant_top: bool = True) -> InterestTree:
    """Levels = positions in ``category_path``; shallow paths repeat their last node; a root shared by all dropped."""
    paths = [list(p) if len(p) else ["(none)"] for p in catalog["category_path"]]
    if drop_constant_top and len({p[0] for p in paths}) == 1 and max(map(len, paths)) > 1:
        paths = [p[1:] or p for p in paths]
    depth = max(map(len, paths))
    paths = [p + [p[-1]] * (depth - len(p)) for p in paths]
    codes, parents, labels = np.zeros((len(paths), depth), dtype=np.int64), [], []
    for lv in range(depth):
        keys = [tuple(p[:lv + 1]) for p in paths]
        index = {k: i for i, k in enumerate(sorted(set(keys)))}
        codes[:, lv] = [index[k] for k in keys]
        up = {} if lv == 0 else {k: i for i, k in enumerate(sorted({tuple(p[:lv]) for p in paths}))}
        parents.append(np.array([0 if lv == 0 else up[k[:-1]] for k in sorted(index)], dtype=np.int64))
        labels.append([k[-1] for k in sorted(index)])
    return InterestTree(codes=codes, parents=parents, labels=labels, source="categories")
