"""Stage `hierarchy`: the interest tree (from category paths, learned from vectors, or RQ ids), with labels."""

from arborec.hierarchy._build import build_tree, item_titles
from arborec.hierarchy._categories import UNCATEGORISED, category_labels, normalise_paths, tree_from_categories
from arborec.hierarchy._labels import label_tree, node_keywords
from arborec.hierarchy._learn import TreeLearner, behaviour_vectors, cooccurrence_graph, knn_graph, learn_tree
from arborec.hierarchy._rq import residual_codes, semantic_ids
from arborec.hierarchy._tree import InterestTree

__all__ = ["InterestTree", "build_tree", "item_titles", "tree_from_categories", "normalise_paths", "category_labels", "UNCATEGORISED",
           "TreeLearner", "learn_tree", "behaviour_vectors", "cooccurrence_graph", "knn_graph", "label_tree", "node_keywords",
           "semantic_ids", "residual_codes"]
