"""An `InterestTree` from the catalogue's own category paths, normalised."""

from __future__ import annotations

import numpy as np
import pandas as pd

from arborec.diagnostics import ConfigError, check_param, logger
from arborec.hierarchy._nodes import check_vectors, codes_from_keys, node_centroids
from arborec.hierarchy._tree import InterestTree

UNCATEGORISED = "(uncategorised)"


def normalise_paths(paths, max_depth: int | None = None, drop_shared_root: bool = True) -> list[list[str]]:
    """Clean category paths: one list of names per item, root first, possibly empty.

    - Each name is stripped (inner whitespace collapsed); empty names are dropped.
    - Consecutive duplicates (case-insensitive) collapse: ``Hair > Hair > Shampoo`` -> ``Hair > Shampoo``.
    - Several paths for one item (a list of lists): the deepest wins, ties go to the alphabetically
      first path (joined with " > "), so the choice never depends on the order the source listed them.
    - A root shared by every non-empty path (``Beauty`` on Amazon Beauty) is dropped, repeatedly
      (``All > Beauty > ...`` loses both), as long as some path goes deeper than it.
    - Paths longer than ``max_depth`` are cut.
    """
    out = [_one_path(p) for p in paths]
    while drop_shared_root:
        non_empty = [p for p in out if p]
        roots = {p[0] for p in non_empty}
        if len(roots) != 1 or not any(len(p) > 1 for p in non_empty):
            break
        logger.debug("dropping the category root %r shared by every item", next(iter(roots)))
        out = [p[1:] for p in out]
    if max_depth is not None:
        out = [p[:max_depth] for p in out]
    return out


def _one_path(p) -> list[str]:
    if p is None or (isinstance(p, float) and p != p):
        return []
    if isinstance(p, str):
        p = p.split(">")
    p = list(p)
    if p and all(isinstance(x, (list, tuple, np.ndarray)) for x in p):  # several paths: pick one
        candidates = [_one_path(q) for q in p]
        return min(candidates, key=lambda q: (-len(q), " > ".join(q)), default=[])
    names = []
    for x in p:
        name = " ".join(str(x).split())
        if name and (not names or names[-1].casefold() != name.casefold()):
            names.append(name)
    return names


def tree_from_categories(catalog: pd.DataFrame, max_depth: int = 3, vectors: np.ndarray | None = None,
                         drop_shared_root: bool = True) -> InterestTree:
    """The catalogue's category paths as an `InterestTree` (source ``"categories"``).

    Parameters
    ----------
    catalog : DataFrame with a ``category_path`` column (list of str per item, root first, may be
        empty or None); row i is item i.
    max_depth : int, default 3
        Levels kept below the (dropped) shared root. The tree has ``min(max_depth, deepest path)``
        levels.
    vectors : (n_items, d) array, optional
        Item vectors; when given, each node's centroid is the normalised mean of its items' vectors.
    drop_shared_root : bool, default True
        Drop a root every path shares (see :func:`normalise_paths`).

    Paths are normalised by :func:`normalise_paths`. A path shorter than the tree repeats its last
    node downwards (``Hair Care`` -> ``Hair Care > Hair Care > Hair Care``), so every level is
    complete. Items without any path go to an explicit ``"(uncategorised)"`` node at every level:
    the catalogue says nothing about them, and the tree says so. Labels are the category names.
    """
    check_param("max_depth", max_depth, isinstance(max_depth, (int, np.integer)) and max_depth >= 1,
                "an integer >= 1")
    if "category_path" not in catalog.columns:
        raise ConfigError("the catalog has no 'category_path' column")
    paths = normalise_paths(catalog["category_path"], max_depth=max_depth, drop_shared_root=drop_shared_root)
    n = len(paths)
    if vectors is not None:
        vectors = check_vectors(vectors, n_items=n)
    L = max([len(p) for p in paths] + [1])
    n_empty = sum(1 for p in paths if not p)
    if n_empty:
        logger.info("%d of %d items have no category path: they go to %r", n_empty, n, UNCATEGORISED)
    full = [(p + [p[-1]] * (L - len(p))) if p else [UNCATEGORISED] * L for p in paths]
    names = sorted({name for p in full for name in p})
    name_id = {name: i for i, name in enumerate(names)}
    keys = np.array([[name_id[name] for name in p] for p in full], dtype=np.int64).reshape(n, L)
    codes, parents, node_keys = codes_from_keys(keys)
    labels = [[names[k] for k in level_keys] for level_keys in node_keys]
    centroids = node_centroids(codes, vectors) if vectors is not None else None
    meta = {"max_depth": int(max_depth), "n_uncategorised": int(n_empty),
            "n_shallow": int(sum(1 for p in paths if 0 < len(p) < L))}
    return InterestTree(codes=codes, parents=parents, labels=labels, centroids=centroids, source="categories",
                        meta=meta)


def category_labels(catalog: pd.DataFrame, level: int, drop_shared_root: bool = True) -> np.ndarray:
    """(n_items,) object array: each item's category name at ``level`` (1-based, after the shared root
    is dropped), or None when its path is shallower. For comparing a learned tree with the given one."""
    paths = normalise_paths(catalog["category_path"], drop_shared_root=drop_shared_root)
    return np.array([p[level - 1] if len(p) >= level else None for p in paths], dtype=object)


def has_informative_categories(catalog: pd.DataFrame, min_coverage: float = 0.5) -> bool:
    """True when at least ``min_coverage`` of the items have a path and level 1 has >= 2 categories."""
    if "category_path" not in catalog.columns or len(catalog) == 0:
        return False
    paths = normalise_paths(catalog["category_path"], max_depth=1)
    covered = [p[0] for p in paths if p]
    return len(covered) >= min_coverage * len(paths) and len(set(covered)) >= 2
