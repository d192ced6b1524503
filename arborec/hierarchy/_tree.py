"""The `InterestTree` data structure: levels of nodes, each item's path from the root to a leaf."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arborec.diagnostics import ConfigError


@dataclass
class InterestTree:
    """A rooted tree of interests with every item on exactly one root-to-leaf path.

    Levels are numbered 1..L below an implicit root (level 0). Every item has a node at every level
    (a shallow branch repeats its last node downwards), so a path is always L codes long.

    Attributes
    ----------
    codes : (n_items, L) int64
        ``codes[i, l]`` is the index, among level ``l + 1``'s nodes, of item ``i``'s node at that
        level. It doubles as the item's semantic id.
    parents : list of L int64 arrays
        ``parents[l][j]`` is the index, among level ``l``'s nodes, of the parent of node ``j`` at
        level ``l + 1`` (``parents[0]`` is all zeros: the root).
    labels : list of L lists of str
        ``labels[l][j]`` is a readable label of node ``j`` at level ``l + 1``.
    centroids : list of L float32 arrays (n_nodes_l, d), optional
        Mean item vector of each node, L2-normalised.
    source : str
        How the tree was built: ``"categories"``, ``"learned"`` or ``"rq"``.
    meta : dict
        Free-form provenance (parameters, seed, model key) saved with the tree.
    """

    codes: np.ndarray
    parents: list[np.ndarray]
    labels: list[list[str]]
    centroids: list[np.ndarray] | None = None
    source: str = "learned"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.codes = np.ascontiguousarray(self.codes, dtype=np.int64)
        self.parents = [np.asarray(p, dtype=np.int64) for p in self.parents]
        self.validate()

    # -- shape -----------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_levels(self) -> int:
        return int(self.codes.shape[1])

    @property
    def level_sizes(self) -> list[int]:
        """Number of nodes at each level 1..L."""
        return [len(p) for p in self.parents]

    # -- reading ---------------------------------------------------------------------------
    def path(self, item: int) -> list[int]:
        """Node indices of ``item`` at levels 1..L."""
        return [int(c) for c in self.codes[item]]

    def path_labels(self, item: int) -> list[str]:
        """Readable labels along ``item``'s path, coarse to fine."""
        return [self.labels[level][c] for level, c in enumerate(self.codes[item])]

    def members(self, level: int, node: int) -> np.ndarray:
        """Items under ``node`` at ``level`` (1-based), sorted."""
        return np.flatnonzero(self.codes[:, level - 1] == node)

    def node_sizes(self, level: int) -> np.ndarray:
        """(n_nodes,) number of items under each node of ``level`` (1-based)."""
        return np.bincount(self.codes[:, level - 1], minlength=self.level_sizes[level - 1])

    def children(self, level: int, node: int) -> np.ndarray:
        """Indices at ``level + 1`` of the children of ``node`` at ``level`` (0 = root)."""
        return np.flatnonzero(self.parents[level] == node)

    def node_label(self, level: int, node: int) -> str:
        """Label of ``node`` at ``level`` (1-based)."""
        return self.labels[level - 1][node]

    # -- showing ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able nodes, level by level: ``{"source", "level_sizes", "levels": [[{"id", "parent",
        "label", "size"}, ...], ...], "meta"}`` (item codes are not included: see ``codes``)."""
        levels = []
        for level in range(1, self.n_levels + 1):
            sizes = self.node_sizes(level)
            levels.append([{"id": j, "parent": int(self.parents[level - 1][j]), "label": self.labels[level - 1][j],
                            "size": int(sizes[j])} for j in range(self.level_sizes[level - 1])])
        return {"source": self.source, "n_items": self.n_items, "level_sizes": self.level_sizes, "levels": levels,
                "meta": self.meta}

    def to_text(self, max_children: int = 8, max_depth: int = 2) -> str:
        """An indented outline of the largest nodes: ``max_children`` per node, ``max_depth`` levels."""
        lines = []

        def walk(level: int, node: int, indent: str) -> None:  # children of `node` at `level` (0 = root)
            if level >= min(max_depth, self.n_levels):
                return
            kids = self.children(level, node)
            all_sizes = self.node_sizes(level + 1)
            kids = kids[np.argsort(-all_sizes[kids], kind="stable")]  # largest first
            for j in kids[:max_children]:
                size = int(all_sizes[j])
                lines.append(f"{indent}{self.labels[level][j]}  ({size:,} items, {100.0 * size / self.n_items:.1f}%)")
                walk(level + 1, int(j), indent + "    ")
            if len(kids) > max_children:
                rest = int(all_sizes[kids[max_children:]].sum())
                lines.append(f"{indent}... {len(kids) - max_children} more ({rest:,} items)")

        walk(0, 0, "")
        return "\n".join(lines)

    # -- checking --------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError unless codes, parents and labels describe one consistent tree."""
        if self.codes.ndim != 2 or self.codes.shape[1] < 1:
            raise ConfigError(f"codes must be (n_items, n_levels) with n_levels >= 1, got shape {self.codes.shape}")
        L = self.codes.shape[1]
        if len(self.parents) != L or len(self.labels) != L:
            raise ConfigError(f"{L} levels in codes but {len(self.parents)} parent arrays and {len(self.labels)} "
                              "label lists")
        for level in range(L):
            n = len(self.parents[level])
            n_up = 1 if level == 0 else len(self.parents[level - 1])
            if len(self.labels[level]) != n:
                raise ConfigError(f"level {level + 1}: {n} nodes but {len(self.labels[level])} labels")
            if n and (self.parents[level].min() < 0 or self.parents[level].max() >= n_up):
                raise ConfigError(f"level {level + 1}: parent index out of range [0, {n_up})")
            col = self.codes[:, level]
            if len(col) and (col.min() < 0 or col.max() >= n):
                raise ConfigError(f"level {level + 1}: item code out of range [0, {n})")
            if level > 0 and not np.array_equal(self.parents[level][col], self.codes[:, level - 1]):
                bad = int(np.flatnonzero(self.parents[level][col] != self.codes[:, level - 1])[0])
                raise ConfigError(f"item {bad}: its level-{level + 1} node's parent is not its level-{level} node")
        if self.centroids is not None and len(self.centroids) != L:
            raise ConfigError(f"{L} levels but {len(self.centroids)} centroid arrays")

    # -- saving ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the tree as one ``.npz`` (arrays) plus JSON inside it (labels, meta); no pickle."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"codes": self.codes}
        for level, p in enumerate(self.parents):
            arrays[f"parents_{level}"] = p
            if self.centroids is not None:
                arrays[f"centroids_{level}"] = np.asarray(self.centroids[level], dtype=np.float32)
        header = {"labels": self.labels, "source": self.source, "meta": self.meta,
                  "has_centroids": self.centroids is not None}
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "InterestTree":
        with np.load(Path(path), allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            L = z["codes"].shape[1]
            parents = [z[f"parents_{level}"] for level in range(L)]
            centroids = [z[f"centroids_{level}"] for level in range(L)] if header["has_centroids"] else None
            return cls(codes=z["codes"], parents=parents, labels=header["labels"], centroids=centroids,
                       source=header["source"], meta=header["meta"])

    def __repr__(self) -> str:
        return f"InterestTree(source={self.source!r}, n_items={self.n_items}, level_sizes={self.level_sizes})"
