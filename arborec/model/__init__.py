"""Stage `model`: the hierarchical long/short-term user-interest model (PyTorch), its training and bundles."""

from arborec.model._bundle import load_bundle, save_bundle, save_fitted
from arborec.model._network import ArboRecConfig, ArboRecModule
from arborec.model._plot import plot_history
from arborec.model._recommender import ArboRec
from arborec.model._trees import default_tree

__all__ = ["ArboRec", "ArboRecConfig", "ArboRecModule", "default_tree", "load_bundle", "plot_history", "save_bundle", "save_fitted"]
