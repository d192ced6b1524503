"""Readable node labels: keywords that set a node apart from its siblings (class-based TF-IDF)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import scipy.sparse as sp

from arborec.diagnostics import ConfigError, check_param
from arborec.hierarchy._categories import normalise_paths
from arborec.hierarchy._tree import InterestTree

SEPARATOR = " · "
#: Words of quantity and packaging that fill product titles but say nothing about an interest.
UNIT_WORDS = ("oz", "ounce", "ounces", "fl", "ml", "mg", "kg", "lb", "lbs", "gram", "grams", "inch", "inches", "mm",
              "cm", "count", "ct", "pack", "packs", "pcs", "pc", "piece", "pieces", "size", "value", "new", "pk")


def node_keywords(tree: InterestTree, texts, top_n: int = 3, min_df: int = 2,
                  stop_words=UNIT_WORDS) -> list[list[list[str]]]:
    """``keywords[l][j]``: up to ``top_n`` words that distinguish node j of level l + 1 from its siblings.

    Class-based TF-IDF: each node is one "class" holding its items' texts; a word scores
    ``share of the node's items that contain it * log(1 + A / f)`` where ``f`` is how often the
    word occurs among the node and its siblings (items containing it) and ``A`` the mean number of
    word occurrences per sibling. Words come from scikit-learn's CountVectorizer (English stop
    words plus ``stop_words``, by default units and packaging; letters only; in at least ``min_df``
    items). A word whose singular form is already chosen ("shampoos" after "shampoo") is skipped.
    Siblings get different keyword sets where their words allow it (a smaller sibling whose top
    words equal a larger one's takes its next-best word last). An only child gets its parent's words.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    texts = [str(t) if t is not None else "" for t in texts]
    if len(texts) != tree.n_items:
        raise ConfigError(f"{len(texts)} texts for a tree of {tree.n_items} items")
    check_param("top_n", top_n, top_n >= 1, "an integer >= 1")
    stop = sorted(ENGLISH_STOP_WORDS.union(stop_words or ()))
    vectorizer = CountVectorizer(stop_words=stop, min_df=min(min_df, max(1, len(texts))), binary=True,
                                 token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b")
    try:
        X = vectorizer.fit_transform(texts).tocsc().astype(np.float64)  # (n_items, n_words) item contains word
    except ValueError:  # empty vocabulary: no usable words at all
        return [[[] for _ in range(n)] for n in tree.level_sizes]
    words = vectorizer.get_feature_names_out()
    out = []
    for level in range(tree.n_levels):
        n_nodes = tree.level_sizes[level]
        onehot = sp.csr_matrix((np.ones(tree.n_items), (tree.codes[:, level], np.arange(tree.n_items))),
                               shape=(n_nodes, tree.n_items))
        counts = (onehot @ X).tocsr()  # (n_nodes, n_words) items of the node containing the word
        sizes = np.maximum(tree.node_sizes(level + 1), 1)[:, None]
        parents = tree.parents[level]
        level_words = [[] for _ in range(n_nodes)]
        for p in np.unique(parents):
            siblings = np.flatnonzero(parents == p)
            if len(siblings) == 1 and level > 0:  # nothing to tell apart: say what the parent says
                level_words[siblings[0]] = out[level - 1][p]
                continue
            group = counts[siblings].toarray()  # (n_siblings, n_words)
            f = group.sum(axis=0)
            A = group.sum() / len(siblings)
            scores = (group / sizes[siblings]) * np.log1p(A / np.maximum(f, 1e-12))
            scores[group < 1] = 0.0
            used = set()
            for row in np.argsort(-sizes[siblings, 0], kind="stable"):  # largest sibling chooses first
                candidates = _top_words(scores[row], words, top_n + 6)
                chosen = candidates[:top_n]
                for extra in candidates[top_n:]:
                    if frozenset(chosen) not in used:
                        break
                    chosen = candidates[:top_n - 1] + [extra]
                used.add(frozenset(chosen))
                level_words[siblings[row]] = chosen
        out.append(level_words)
    return out


def _top_words(scores: np.ndarray, words, top_n: int) -> list[str]:
    chosen, stems = [], set()
    for w in np.argsort(-scores, kind="stable"):
        if scores[w] <= 0 or len(chosen) == top_n:
            break
        stem = _singular(words[w])
        if stem not in stems:
            chosen.append(str(words[w]))
            stems.add(stem)
    return chosen


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def dominant_categories(tree: InterestTree, categories, min_share: float = 0.0) -> list[list[str | None]]:
    """``out[l][j]``: the most common given category at level l + 1 among node j's items (ties: the
    alphabetically first), or None when none of them has a category that deep or its share is below
    ``min_share``. ``categories`` is the catalog's ``category_path`` column (normalised here)."""
    paths = normalise_paths(categories)
    if len(paths) != tree.n_items:
        raise ConfigError(f"{len(paths)} category paths for a tree of {tree.n_items} items")
    out = []
    for level in range(tree.n_levels):
        names = [p[level] if len(p) > level else None for p in paths]
        per_node = [Counter() for _ in range(tree.level_sizes[level])]
        for name, node in zip(names, tree.codes[:, level]):
            if name is not None:
                per_node[node][name] += 1
        sizes = tree.node_sizes(level + 1)
        row = []
        for counter, size in zip(per_node, sizes):
            if not counter:
                row.append(None)
                continue
            name, count = min(counter.items(), key=lambda kv: (-kv[1], kv[0]))
            row.append(name if count >= min_share * size else None)
        out.append(row)
    return out


def label_tree(tree: InterestTree, texts, categories=None, top_n: int = 3, min_df: int = 2,
               min_share: float = 0.3) -> InterestTree:
    """A copy of ``tree`` whose labels read ``"Hair Care · shampoo, conditioner, argan"``.

    The keywords come from :func:`node_keywords` (class-based TF-IDF against the node's siblings);
    the category part, when ``categories`` (the ``category_path`` column) is given, is the node's
    dominant category at its level (shown when it covers at least ``min_share`` of the node's
    items). Siblings whose labels would still be equal get " (2)", " (3)"... so labels among siblings
    are distinct. Keywords and categories are also kept in ``meta["keywords"]`` / ``meta["categories"]``.
    A node with neither keeps its old label.
    """
    keywords = node_keywords(tree, texts, top_n=top_n, min_df=min_df)
    cats = dominant_categories(tree, categories, min_share) if categories is not None else None
    labels = []
    for level in range(tree.n_levels):
        row = []
        for j in range(tree.level_sizes[level]):
            parts = [cats[level][j]] if cats is not None and cats[level][j] else []
            if keywords[level][j]:
                parts.append(", ".join(keywords[level][j]))
            row.append(SEPARATOR.join(parts) if parts else tree.labels[level][j])
        labels.append(_distinct_among_siblings(row, tree.parents[level]))
    meta = dict(tree.meta, keywords=keywords)
    if cats is not None:
        meta["categories"] = cats
    return dataclasses.replace(tree, labels=labels, meta=meta)


def _distinct_among_siblings(labels: list[str], parents: np.ndarray) -> list[str]:
    out = list(labels)
    for p in np.unique(parents):
        seen = Counter()
        for j in np.flatnonzero(parents == p):
            seen[labels[j]] += 1
            if seen[labels[j]] > 1:
                out[j] = f"{labels[j]} ({seen[labels[j]]})"
    return out
