"""The served catalogue: item ids, text vectors, the interest tree and popularity, growing as items are added."""

from __future__ import annotations

import numpy as np

from arborec.hierarchy import InterestTree


class ServedCatalog:
    """Items the service knows: ids, titles, text vectors, tree codes and event counts; items can be appended.

    Parameters
    ----------
    item_ids : sequence of str, row i = item i
    titles : sequence of str
    vectors : (n_items, d) float32 L2-normalised text vectors
    tree : InterestTree over these items (its ``codes`` grow with the catalogue)
    counts : (n_items,) event counts (popularity)
    """

    def __init__(self, item_ids, titles, vectors: np.ndarray, tree: InterestTree, counts: np.ndarray):
        self.item_ids = [str(i) for i in item_ids]
        self.titles = [str(t) for t in titles]
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.tree = tree
        self.counts = np.asarray(counts, dtype=np.float64).copy()
        self.index_of = {item: i for i, item in enumerate(self.item_ids)}
        self.tree_paths = {tuple(tree.path_labels(i)): tuple(tree.path(i)) for i in range(tree.n_items)}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def append(self, item_ids: list[str], titles: list[str], vectors: np.ndarray, codes: np.ndarray) -> None:
        start = self.n_items
        self.item_ids.extend(item_ids)
        self.titles.extend(titles)
        self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])
        self.tree.codes = np.vstack([self.tree.codes, np.asarray(codes, dtype=np.int64)])
        self.counts = np.concatenate([self.counts, np.zeros(len(item_ids))])
        self.index_of.update({item: start + j for j, item in enumerate(item_ids)})

    def path_labels(self, item: int) -> list[str]:
        return self.tree.path_labels(item)

    def place(self, category_path: list[str] | None, neighbours: np.ndarray) -> np.ndarray:
        """Tree codes (L,) for a new item: its category path where the tree has it (the longest known
        prefix, completed inside that branch by the nearest neighbour), else its nearest neighbour's."""
        codes = self.tree.codes
        path = [p for p in (category_path or []) if p]
        for probe in (path, path[1:]):  # as given, or without a root the tree dropped ("Beauty > ...")
            for cut in range(min(len(probe), self.tree.n_levels), 0, -1):
                match = self._prefix_codes(tuple(probe[:cut]))
                if match is None:
                    continue
                inside = [n for n in neighbours if tuple(codes[n, :cut]) == match]
                return codes[inside[0]].copy() if inside else np.array(self._first_child_path(match))
        return codes[neighbours[0]].copy()

    def _prefix_codes(self, labels: tuple[str, ...]) -> tuple[int, ...] | None:
        for full_labels, full_codes in self.tree_paths.items():
            if full_labels[:len(labels)] == labels:
                return full_codes[:len(labels)]
        return None

    def _first_child_path(self, prefix: tuple[int, ...]) -> tuple[int, ...]:
        for full_codes in self.tree_paths.values():
            if full_codes[:len(prefix)] == prefix:
                return full_codes
        raise KeyError(prefix)
