"""Stage `hierarchy`: the interest tree (from category paths, learned from vectors, or RQ ids), with labels."""

from arborec.hierarchy._categories import UNCATEGORISED, category_labels, normalise_paths, tree_from_categories
from arborec.hierarchy._learn import TreeLearner, blend_vectors, collaborative_vectors, learn_tree
from arborec.hierarchy._tree import InterestTree

__all__ = ["InterestTree", "tree_from_categories", "normalise_paths", "category_labels", "UNCATEGORISED",
           "TreeLearner", "learn_tree", "collaborative_vectors", "blend_vectors"]
