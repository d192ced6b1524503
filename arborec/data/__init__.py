"""Stage `data`: load public and custom datasets into canonical tables, prepare them, split them."""

from arborec.data._cache import load_prepared
from arborec.data._prepare import PrepareConfig, PreparedData, prepare
from arborec.data._registry import REGISTRY, cache_dir, load_dataset, search_folders
from arborec.data._split import Histories, Split, leave_one_out
from arborec.data._tables import Dataset
from arborec.data.synthetic import make_synthetic

__all__ = [
    "Dataset", "PrepareConfig", "PreparedData", "prepare", "Split", "Histories", "leave_one_out",
    "load_dataset", "load_prepared", "make_synthetic", "REGISTRY", "cache_dir", "search_folders",
]
