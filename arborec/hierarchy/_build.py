"""build_tree: one entry point choosing categories, a learned tree or RQ ids, labelled and ready to use."""

from __future__ import annotations

import numpy as np
import pandas as pd

from arborec.data._tables import has_item_text
from arborec.diagnostics import ConfigError, check_param, logger
from arborec.hierarchy._categories import has_informative_categories, normalise_paths, tree_from_categories
from arborec.hierarchy._labels import label_tree
from arborec.hierarchy._learn import learn_tree
from arborec.hierarchy._rq import semantic_ids
from arborec.hierarchy._tree import InterestTree

SOURCES = ("auto", "categories", "learned", "rq")


def build_tree(data, vectors: np.ndarray | None = None, source: str = "auto", depth: int = 3,
               branching=None, seed: int = 0, graph=None, codebook_size=32, label: bool = True,
               **learn_kw) -> InterestTree:
    """Build the interest tree of a catalogue.

    Parameters
    ----------
    data : PreparedData, Dataset or catalog DataFrame (row i = item i)
    vectors : (n_items, d) item vectors; needed by "learned" and "rq", optional for "categories"
        (node centroids).
    source : {"auto", "categories", "learned", "rq"}, default "auto"
        "auto": the catalogue's category paths when they are informative (at least half the items
        have one, and the first level has two or more categories), or when the items have no
        text (:func:`arborec.data.has_item_text`; e.g. Amazon Sports' anonymous attribute paths)
        and some have a path; otherwise learned. Without text the item vectors are all alike and a
        learned tree would collapse, so the given paths, however sparse, are the better source.
    depth : int, default 3
        Levels (the category tree's ``max_depth``, the RQ levels, and the learned depth when
        ``branching`` is None).
    branching : tuple of int, optional
        Children per node of a learned tree (default: 8 at the top, then 4: ``(8, 4, 4)`` for depth 3).
    seed : int
    graph : sparse (n_items, n_items), optional
        Item affinities from behaviour for the learned tree (see ``cooccurrence_graph``).
    codebook_size : int or tuple, default 32
        RQ codebook size per level.
    label : bool, default True
        Label learned and RQ nodes with ``label_tree`` (keywords from the titles, plus the dominant
        given category when the catalogue has paths). Category trees keep the category names.
    **learn_kw : passed to ``TreeLearner`` (n_neighbors, smoothing, n_init...).
    """
    check_param("source", source, source in SOURCES, " or ".join(map(repr, SOURCES)))
    check_param("depth", depth, isinstance(depth, (int, np.integer)) and depth >= 1, "an integer >= 1")
    catalog = _catalog(data)
    if source == "auto":
        source = auto_source(catalog)
        logger.info("tree source: %s", source)
    if source != "categories" and not has_item_text(catalog):
        logger.warning("the items have no text (no title, brand, description...): their vectors carry no text "
                       "to learn a %s tree from; give the catalogue category or attribute paths", source)
    if source != "categories" and vectors is None:
        raise ConfigError(f"source={source!r} needs item vectors (arborec.text.encode_items(catalog))")
    if vectors is not None and len(vectors) != len(catalog):
        raise ConfigError(f"vectors has {len(vectors)} rows but the catalog has {len(catalog)} items")
    if source == "categories":
        return tree_from_categories(catalog, max_depth=depth, vectors=vectors)
    if source == "learned":
        branching = tuple(branching) if branching is not None else (8,) + (4,) * (depth - 1)
        tree = learn_tree(vectors, branching=branching, seed=seed, graph=graph, **learn_kw)
    else:
        tree = semantic_ids(vectors, n_levels=depth, codebook_size=codebook_size, seed=seed)
    if label:
        has_paths = "category_path" in catalog.columns and has_informative_categories(catalog)
        tree = label_tree(tree, item_titles(catalog), categories=catalog["category_path"] if has_paths else None)
    return tree


def auto_source(catalog: pd.DataFrame) -> str:
    """The source ``build_tree(source="auto")`` picks: "categories" or "learned" (see :func:`build_tree`)."""
    if has_informative_categories(catalog):
        return "categories"
    has_path = "category_path" in catalog.columns and any(normalise_paths(catalog["category_path"], max_depth=1))
    if has_path and not has_item_text(catalog):
        logger.info("the items have no text: the tree follows the catalogue's category (attribute) paths")
        return "categories"
    return "learned"


def item_titles(catalog: pd.DataFrame) -> list[str]:
    """Title (plus genres or tags when the catalogue has them) of each item: the words labels come from."""
    texts = catalog["title"].fillna("").astype(str).tolist() if "title" in catalog.columns else [""] * len(catalog)
    for extra in ("genres", "tags"):
        if extra in catalog.columns:
            texts = [f"{t} {_words(v)}" for t, v in zip(texts, catalog[extra])]
    return texts


def _words(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return " ".join(map(str, value)) if isinstance(value, (list, tuple, np.ndarray)) else str(value)


def _catalog(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    catalog = getattr(data, "catalog", None)
    if not isinstance(catalog, pd.DataFrame):
        raise ConfigError(f"data must be a PreparedData, Dataset or catalog DataFrame, got {type(data).__name__}")
    return catalog
