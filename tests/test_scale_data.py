"""The scale data generator: exact sizes, determinism, planted hierarchy, power-law popularity, folder loading."""

import numpy as np
import pandas as pd
import pytest

from arborec.data import make_scale, prepare, read_folder
from arborec.diagnostics import ConfigError


@pytest.fixture(scope="module")
def scale_dir(tmp_path_factory):
    return make_scale(n_items=3000, n_users=1500, n_events=40_000, seed=3,
                      out_dir=tmp_path_factory.mktemp("scale") / "scale-3k")


def _tables(folder):
    return (pd.read_parquet(folder / "interactions.parquet"), pd.read_parquet(folder / "catalog.parquet"),
            pd.read_parquet(folder / "user_interests.parquet"))


def test_sizes_and_layout(scale_dir):
    inter, catalog, truth = _tables(scale_dir)
    assert len(inter) == 40_000 and inter["user"].nunique() == 1500
    assert inter.groupby("user").size().min() >= 5
    assert len(catalog) == 3000 and catalog["item"].is_unique
    assert set(inter["item"]) <= set(catalog["item"])
    assert all(len(p) == 3 for p in catalog["category_path"])
    assert catalog["title"].str.len().min() > 5
    # time-ordered within each user, users contiguous
    assert (inter.groupby("user")["timestamp"].diff().dropna() > 0).all()
    assert inter["user"].is_monotonic_increasing
    assert truth.groupby("user").size().between(1, 3).all()


def test_read_folder_and_prepare(scale_dir):
    data = read_folder(scale_dir)
    assert data.name == "scale-3k" and len(data.interactions) == 40_000 and len(data.catalog) == 3000
    prepared = prepare(data)
    assert prepared.n_items > 1000 and prepared.n_users > 1000


def test_deterministic_and_independent_of_chunking(tmp_path):
    a = make_scale(n_items=500, n_users=5000, n_events=30_000, seed=1, out_dir=tmp_path / "a")
    b = make_scale(n_items=500, n_users=5000, n_events=30_000, seed=1, out_dir=tmp_path / "b", chunk_events=7000)
    c = make_scale(n_items=500, n_users=5000, n_events=30_000, seed=2, out_dir=tmp_path / "c")
    for x, y in zip(_tables(a), _tables(b)):
        pd.testing.assert_frame_equal(x, y)
    assert not _tables(a)[0].equals(_tables(c)[0])


def test_planted_hierarchy(scale_dir):
    inter, catalog, truth = _tables(scale_dir)
    path = catalog.set_index("item")["category_path"]
    inter["top"] = inter["item"].map(path.str[0])
    inter["leaf"] = inter["item"].map(path.str[2])
    # most of a user's events fall in the planted interest leaves (noise 10%, exploring sessions 5%)
    planted = set(zip(truth["user"], truth["leaf_name"]))
    in_planted = np.mean([(u, leaf) in planted for u, leaf in zip(inter["user"], inter["leaf"])])
    assert in_planted > 0.75
    # a user's events concentrate in one top category (8 exist: 1/8 would be no structure)
    top_share = inter.groupby("user")["top"].agg(lambda s: s.value_counts(normalize=True).iloc[0])
    assert top_share.mean() > 0.6
    # second interests share the first one's middle node far more often than chance
    first = truth.groupby("user").nth(0).set_index("user")
    second = truth.groupby("user").nth(1).set_index("user")
    same_mid = (first.loc[second.index, "middle"] == second["middle"]).mean()
    assert same_mid > 0.4  # chance: about 1 / 48


def test_power_law_popularity(scale_dir):
    inter, catalog, _ = _tables(scale_dir)
    counts = inter["item"].value_counts()
    top1 = counts.iloc[: len(catalog) // 100].sum() / len(inter)
    assert top1 > 0.12  # uniform popularity would give about 0.01
    assert counts.iloc[0] > 20 * counts.median()


def test_validation():
    with pytest.raises(ConfigError, match="n_events"):
        make_scale(n_items=100, n_users=100, n_events=10, out_dir="/nonexistent")
    with pytest.raises(ConfigError, match="n_items"):
        make_scale(n_items=10, n_users=1, n_events=10, out_dir="/nonexistent")


def test_cli_generate(tmp_path, capsys):
    from arborec.cli import main

    assert main(["-q", "generate", "--items", "100", "--events", "2000", "--out", str(tmp_path / "g")]) == 0
    assert "100 items, 100 users, 2,000 events" in capsys.readouterr().out
    assert len(read_folder(tmp_path / "g").interactions) == 2000


def test_prepare_on_categorical_ids_equals_strings(scale_dir):
    """Scale folders are read dictionary-encoded (categoricals); preparation gives the same tables as
    from plain string columns, ids included."""
    data = read_folder(scale_dir)
    assert isinstance(data.interactions["user"].dtype, pd.CategoricalDtype)
    plain = data.interactions.astype({"user": object, "item": object})
    from arborec.data import Dataset

    as_strings = prepare(Dataset(name=data.name, interactions=plain, catalog=data.catalog))
    compact = prepare(data)
    assert compact.stats == as_strings.stats
    pd.testing.assert_frame_equal(compact.interactions, as_strings.interactions)
    pd.testing.assert_frame_equal(compact.catalog, as_strings.catalog)
    np.testing.assert_array_equal(compact.user_ids, as_strings.user_ids)
    assert compact.interactions["user_idx"].dtype == np.int32 and compact.interactions["item_idx"].dtype == np.int32
    assert list(compact.user_ids) == sorted(compact.user_ids)  # users numbered in sorted id order
