"""The tree `ArboRec.fit` uses when it is given none: the catalogue's categories when deep enough, else learned."""

from __future__ import annotations

import numpy as np

from arborec.data import has_item_text
from arborec.diagnostics import ConfigError
from arborec.hierarchy import InterestTree, build_tree, normalise_paths


def default_tree(data, vectors: np.ndarray, source: str = "auto", seed: int = 0, max_levels: int = 3) -> InterestTree:
    """An interest tree for ``data``'s items, built by :func:`arborec.hierarchy.build_tree`.

    ``source``: "categories" (the catalogue's category paths), "learned" (from the item vectors),
    or "auto": categories when the paths have at least two levels below a shared root (Amazon),
    or when the items have no text and some have a path (anonymous attribute paths: a tree
    learned from text-less vectors would collapse), else learned (MovieLens' one genre level
    says too little).
    """
    if source not in ("auto", "categories", "learned"):
        raise ConfigError(f"tree_source={source!r} is not allowed: expected 'auto', 'categories' or 'learned'")
    if source == "auto":
        depth = 0
        if data is not None and "category_path" in data.catalog:
            depth = max((len(p) for p in normalise_paths(data.catalog["category_path"], max_depth=max_levels)),
                        default=0)
        no_text = data is not None and not has_item_text(data.catalog)
        source = "categories" if depth >= 2 or (no_text and depth >= 1) else "learned"
    return build_tree(data, vectors, source=source, depth=max_levels, seed=seed)
