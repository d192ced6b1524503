"""The data-dependent settings `ArboRec.fit` resolves: the window, the training regime and its batch, text on or off, which tree."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from arborec.data import has_item_text
from arborec.diagnostics import ConfigError
from arborec.hierarchy import InterestTree, normalise_paths

# max_len="auto": the smallest of these windows that holds WINDOW_COVERAGE of the training histories
# whole (the largest when none does). 50 and 200 are the published SASRec windows (Amazon, MovieLens)
# and the suite's grid; 100 sits between them.
WINDOWS = (50, 100, 200)
WINDOW_COVERAGE = 0.9
# regime="auto": one prefix per target when that costs at most this many times the attention positions of
# training every position of a window at once (the Amazon 5-core sets: 6-9x; MovieLens: 100-180x)
PREFIX_MAX_COST = 20.0
# batch_size="auto": training examples per step in each regime. A prefix is one target, a window up to max_len
# targets; a step's fixed cost (the whole catalogue's item table and softmax) is then shared by more targets.
# lr is stated for LR_BATCH examples per step; an auto batch B trains at lr * sqrt(B / LR_BATCH) (the square-root
# rule for Adam). benchmarks/notes/batch_size.md: what this buys and costs on Beauty.
BATCH = {"prefix": 512, "every": 128}
LR_BATCH = 128
# no text and no category paths: a tree is learned from co-occurrence when the catalogue has at least this many
# items (the learned tree's 8 x 4 x 4 = 128 leaves then hold two items each on average)
BEHAVIOUR_TREE_MIN_ITEMS = 256


def auto_window(lengths: np.ndarray, windows=WINDOWS, coverage: float = WINDOW_COVERAGE) -> tuple[int, float]:
    """``(window, q)``: the smallest of ``windows`` >= q, the ``coverage`` quantile of the training
    history ``lengths`` (events per user), or the largest window when q exceeds them all.

    Why this rule: the short-term stream (causal attention, cost ~ window^2 per sequence) then sees
    nine in ten users' whole training history, and the recurrent long-term stream reads what lies
    before the window for the rest, so a longer window would buy little. A window longer than the
    histories costs nothing either (batches are trimmed to their longest sequence), hence the floor
    of 50 even for short histories. Beyond 200 the attention's cost grows faster than what it adds
    to the recurrent stream on the catalogues measured (MovieLens: 200 is the published setting).
    """
    lengths = np.asarray(lengths)
    lengths = lengths[lengths > 0]
    q = float(np.quantile(lengths, coverage)) if len(lengths) else 0.0
    return next((w for w in sorted(windows) if w >= q), max(windows)), q


def prefix_cost(lengths: np.ndarray, max_len: int) -> float:
    """How many times more input positions an epoch of one-prefix-per-target training reads than an epoch
    of every-position training, for users with these training history ``lengths`` and window ``max_len``.

    Every position: a user with n events trains one window of min(n - 1, max_len) positions. One prefix
    per target: each of its last min(n - 1, max_len) targets, the p-th event, reads min(p, max_len) items.
    """
    n = np.asarray(lengths, dtype=np.int64)
    n = n[n >= 2]
    if not len(n):
        return 1.0
    targets = np.minimum(n - 1, max_len)  # per user; the p-th event is a target for p in [lo, hi]
    lo, hi = n - targets, n - 1
    top = np.minimum(hi, max_len)  # prefixes up to max_len long read p items ...
    short = np.where(top >= lo, (lo + top) * (top - lo + 1) // 2, 0)
    full = max_len * np.maximum(hi - np.maximum(lo, max_len + 1) + 1, 0)  # ... longer ones max_len
    return float((short + full).sum() / targets.sum())


def vectors_have_spread(vectors: np.ndarray, rtol: float = 1e-6) -> bool:
    """Whether the item vectors differ at all (text-less items all encode to the same vector)."""
    v = np.asarray(vectors)
    if len(v) < 2:
        return False
    low, high = v.min(axis=0), v.max(axis=0)  # (d,) each: no (n_items, d) temporary on big catalogues
    scale = max(float(np.abs(low).max()), float(np.abs(high).max()), 1.0)
    return bool((high - low).max() > rtol * scale)


def _has_paths(data) -> bool:
    catalog = getattr(data, "catalog", None)
    return (catalog is not None and "category_path" in catalog.columns
            and any(normalise_paths(catalog["category_path"])))


def behaviour_tree(split, seed: int = 0) -> InterestTree:
    """A tree learned from behaviour alone (:func:`arborec.hierarchy.behaviour_vectors` of the training
    histories, smoothed over their co-occurrence graph): what profiles read on a catalogue without text or
    categories. Its nodes are named by level and number (``L1-3``): there are no words to name them from."""
    from arborec.hierarchy import behaviour_vectors, cooccurrence_graph, learn_tree

    train = split.train_matrix()
    tree = learn_tree(behaviour_vectors(train, seed=seed), seed=seed, graph=cooccurrence_graph(train))
    return dataclasses.replace(tree, source="behaviour")


def _flat_tree(n_items: int) -> InterestTree:
    """One node holding every item: what the service and the profiles read when the tree is skipped."""
    return InterestTree(codes=np.zeros((n_items, 1), dtype=np.int64), parents=[np.zeros(1, dtype=np.int64)],
                        labels=[["all items"]], source="none", meta={"skipped": True})


@dataclass
class DataDefaults:
    """What :func:`resolve_defaults` chose, and why (``describe()`` is the one-line log)."""

    max_len: int
    window_reason: str
    regime: str  # "prefix" (one training example per target) or "every" (every position of a window)
    regime_reason: str
    batch_size: int  # training examples per step
    lr_scale: float  # the learning rate's factor for that batch (1 unless the batch was chosen here)
    has_text: bool  # the item table's text part, the text term and the text pointer may be used
    text_reason: str
    tree: InterestTree  # a single node when the tree is skipped
    has_tree: bool  # False: no level heads (one node holds every item)
    tree_reason: str
    tree_in_items: bool = False  # the tree's path nodes are a part of the item table (a tree, no text, heads on)
    heads: bool = True  # False (the no-tree ablation): the model holds no tree, whatever was built

    def describe(self) -> str:
        tree = (f"{self.tree_reason} ({self.tree.n_levels} level{'s' * (self.tree.n_levels > 1)}: "
                f"{'/'.join(map(str, self.tree.level_sizes))} nodes)" if self.has_tree else self.tree_reason)
        if self.tree_in_items:
            tree += ", its path nodes in the item table (no text to describe the items)"
        if not self.heads:
            tree += "; but use_heads=False: the model holds no tree (no level heads, no path nodes in the item table)"
        prefix = self.regime == "prefix"
        lr = f" at {self.lr_scale:g}x the lr" if self.lr_scale != 1 else ""
        return (f"arborec defaults: max_len={self.max_len} ({self.window_reason}); "
                f"training on {'one prefix per target' if prefix else 'every position'} ({self.regime_reason}), "
                f"{self.batch_size} {'prefixes' if prefix else 'windows'} per step{lr}; "
                f"text {'on' if self.has_text else 'off'} ({self.text_reason}); {tree}")


def resolve_defaults(split, data, vectors: np.ndarray, *, max_len="auto", regime: str = "auto",
                     batch_size="auto", tree: InterestTree | None = None, tree_source: str = "auto", seed: int = 0,
                     heads: bool = True) -> DataDefaults:
    """The window, the training regime, the text switch and the tree for training on ``split``
    (``data``: the prepared data or None; ``vectors``: the item vectors; ``tree``: a given tree, used as is).

    - ``max_len="auto"``: :func:`auto_window` of the users' training history lengths; an int is kept.
    - ``regime="auto"``: one prefix per target (each target its own example, as BSARec trains) when
      :func:`prefix_cost` is at most ``PREFIX_MAX_COST`` (short histories), else every position of a
      window at once (long histories, where prefixes would multiply the cost a hundredfold).
    - ``batch_size="auto"``: ``BATCH[regime]`` examples per step, the learning rate scaled by
      sqrt(batch / ``LR_BATCH``); an int is kept, with the learning rate as given.
    - Text is off when the catalogue has no item text (:func:`arborec.data.has_item_text`) or the
      vectors are all alike: the vectors then say nothing about the items.
    - Without text, the tree comes from the catalogue's category/attribute paths when some items
      have one (its path nodes then also enter the item table: the only description of the items), else
      it is learned from co-occurrence (:func:`behaviour_tree`; for profiles only, not in the item table)
      when there are ``BEHAVIOUR_TREE_MIN_ITEMS`` items, else skipped. It is never learned from identical
      vectors (``tree_source="learned"`` is then an error). With text,
      :func:`arborec.model.default_tree` builds it from ``tree_source``. ``heads=False`` (the ablation
      without the tree): the tree is still built, but nothing of it enters the model.
    """
    from arborec.model._trees import default_tree

    if max_len == "auto":
        max_len, q = auto_window(np.diff(split.train_indptr))
        window = f"{WINDOW_COVERAGE:.0%} of training histories <= {q:.0f} events"
    else:
        window = "given"
    if regime == "auto":
        cost = prefix_cost(np.diff(split.train_indptr), int(max_len))
        regime = "prefix" if cost <= PREFIX_MAX_COST else "every"
        bound = "<=" if regime == "prefix" else ">"
        regime_why = f"prefixes cost {cost:.1f}x the positions, {bound} {PREFIX_MAX_COST:g}x"
    else:
        regime_why = "given"
    catalog_text = data is None or has_item_text(data.catalog)
    spread = vectors_have_spread(vectors)
    has_text = catalog_text and spread
    text = ("item text" if has_text else "the catalogue has no item text" if not catalog_text
            else "the item vectors are all alike")
    if batch_size == "auto":
        batch_size, lr_scale = BATCH[regime], math.sqrt(BATCH[regime] / LR_BATCH)
    else:
        batch_size, lr_scale = int(batch_size), 1.0
    chosen = dict(max_len=int(max_len), window_reason=window, regime=regime, regime_reason=regime_why,
                  batch_size=batch_size, lr_scale=lr_scale, has_text=has_text, text_reason=text, heads=heads)
    in_items = not has_text and heads
    if tree is not None:
        return DataDefaults(**chosen, tree=tree, has_tree=True, tree_reason="tree given", tree_in_items=in_items)
    if not has_text:
        if tree_source == "learned":
            raise ConfigError(f"tree_source='learned' needs item vectors that differ ({text}): use 'auto' "
                              "or 'categories', or pass a tree")
        if not _has_paths(data):
            if split.n_items < BEHAVIOUR_TREE_MIN_ITEMS:
                return DataDefaults(**chosen, tree=_flat_tree(split.n_items), has_tree=False,
                                    tree_reason=f"no tree (no item text, no category paths, fewer than "
                                                f"{BEHAVIOUR_TREE_MIN_ITEMS} items to learn one from behaviour)")
            return DataDefaults(**chosen, tree=behaviour_tree(split, seed), has_tree=True,
                                tree_reason="tree learned from co-occurrence in the training histories (no item "
                                            "text and no category paths); it describes users, it does not rank")
        tree_source = "categories"
    tree = default_tree(data, vectors, source=tree_source, seed=seed)
    how = "tree from the catalogue's paths" if tree.source == "categories" else f"tree {tree.source} from the item vectors"
    return DataDefaults(**chosen, tree=tree, has_tree=True, tree_reason=how, tree_in_items=in_items)
