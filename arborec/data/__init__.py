"""Stage `data`: load public and custom datasets into canonical tables, prepare them, split them."""

from arborec.data._cache import load_prepared
from arborec.data._download import RemoteFile, fetch, private_tmp
from arborec.data._prepare import PrepareConfig, PreparedData, prepare
from arborec.data._registry import (REGISTRY, DatasetSpec, cache_dir, describe_datasets, load_dataset, read_folder,
                                    register, search_folders)
from arborec.data._split import Histories, Split, leave_one_out
from arborec.data._tables import TEXT_FIELDS, Dataset, has_item_text, require_item_text
from arborec.data.amazon import read_amazon_meta, read_amazon_reviews, read_p5_sequences
from arborec.data.mind import read_mind
from arborec.data.movielens import (read_ml1m, read_ml100k, read_movielens, read_movielens_csv, read_movielens_dat,
                                    read_movielens_sequences)
from arborec.data.p5 import read_item_attributes, read_item_meta_jsonl, read_user_sequences
from arborec.data.recbole import read_recbole
from arborec.data.scale import ScaleConfig, make_scale
from arborec.data.synthetic import make_synthetic
from arborec.data.table_file import guess_columns, read_table_file
from arborec.data.tabular import read_table

__all__ = [
    "Dataset", "PrepareConfig", "PreparedData", "prepare", "Split", "Histories", "leave_one_out",
    "load_dataset", "load_prepared", "make_synthetic", "REGISTRY", "cache_dir", "search_folders",
    "read_folder", "describe_datasets", "DatasetSpec", "register", "RemoteFile", "fetch", "private_tmp",
    "read_ml100k", "read_movielens", "read_movielens_dat", "read_movielens_csv",
    "read_amazon_reviews", "read_amazon_meta", "read_p5_sequences", "read_mind", "read_recbole", "read_table",
    "make_scale", "ScaleConfig", "has_item_text", "require_item_text", "TEXT_FIELDS", "read_ml1m", "read_movielens_sequences",
    "read_user_sequences", "read_item_meta_jsonl", "read_item_attributes", "read_table_file", "guess_columns",
]
