"""Preparation (filters, order, ids) and the leave-one-out split (no leakage)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arborec.data import Dataset, PrepareConfig, PreparedData, leave_one_out, make_synthetic, prepare
from arborec.diagnostics import ConfigError


def _dataset(rows, ratings=False, has_timestamps=True):
    cols = ["user", "item", "timestamp"] + (["rating"] if ratings else [])
    return Dataset("toy", pd.DataFrame(rows, columns=cols), None, has_timestamps=has_timestamps)


def test_time_order_with_deterministic_ties_and_file_order():
    ds = _dataset([("u", "c", 5), ("u", "a", 1), ("u", "b", 5), ("u", "d", 9)])
    data = prepare(ds, PrepareConfig(user_core=1, item_core=1))
    items = data.item_ids[data.interactions["item_idx"]].tolist()
    assert items == ["a", "c", "b", "d"]  # tie at t=5 keeps file order (c before b)


def test_rating_threshold_dedup_and_counts():
    ds = _dataset([("u", "a", 1, 5.0), ("u", "a", 1, 5.0), ("u", "b", 2, 1.0), ("u", "a", 3, 4.0),
                   ("v", "a", 1, 4.0)], ratings=True)
    data = prepare(ds, PrepareConfig(min_rating=3, user_core=1, item_core=1))
    assert data.stats["dropped_below_min_rating"] == 1
    assert data.stats["dropped_exact_duplicates"] == 1
    assert data.stats["dropped_repeated_pairs"] == 1
    assert data.stats["n_interactions"] == 2
    kept = data.interactions.query("user_idx == 0")
    assert kept["timestamp"].tolist() == [1]  # "first" keeps the earliest (u, a)


def test_repeats_last_and_all():
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "a", 3)]
    last = prepare(_dataset(rows), PrepareConfig(user_core=1, item_core=1, repeats="last"))
    assert last.interactions["timestamp"].tolist() == [2, 3]
    kept = prepare(_dataset(rows), PrepareConfig(user_core=1, item_core=1, repeats="all"))
    assert len(kept.interactions) == 3


def test_k_core_is_iterated():
    # item x has 2 users; after dropping user w (1 event), item x drops to 1 user -> removed too.
    rows = [("u", "x", 1), ("u", "y", 2), ("v", "y", 1), ("v", "z", 2), ("w", "x", 1),
            ("u", "z", 3), ("v", "x", 3)]
    data = prepare(_dataset(rows), PrepareConfig(user_core=2, item_core=2))
    counts_u = data.interactions.groupby("user_idx").size()
    counts_i = data.interactions.groupby("item_idx").size()
    assert (counts_u >= 2).all() and (counts_i >= 2).all()
    assert data.stats["dropped_by_k_core"] == len(rows) - data.stats["n_interactions"]


def test_bad_config_names_parameter():
    with pytest.raises(ConfigError, match="repeats"):
        prepare(_dataset([("u", "a", 1)]), PrepareConfig(repeats="sometimes"))


def test_split_holds_out_last_two_and_no_leakage():
    data = prepare(make_synthetic(n_users=200, seed=3))
    split = leave_one_out(data)
    seqs = data.interactions.groupby("user_idx")["item_idx"].apply(list)
    for u in range(0, data.n_users, 7):
        seq = seqs[u]
        if len(seq) >= 3:
            assert split.test_target[u] == seq[-1] and split.valid_target[u] == seq[-2]
            assert split.train_sequence(u).tolist() == seq[:-2]
            assert split.test_target[u] not in split.train_sequence(u)
            assert split.valid_target[u] not in split.train_sequence(u)
    users = split.eval_users("test")
    test_hist = split.histories("test", users)
    valid_hist = split.histories("valid", users)
    for b, u in enumerate(users[:50]):
        assert test_hist.sequence(b).tolist() == split.train_sequence(u).tolist() + [split.valid_target[u]]
        assert valid_hist.sequence(b).tolist() == split.train_sequence(u).tolist()
        assert split.test_target[u] not in test_hist.sequence(b)


def test_short_users_train_only():
    data = prepare(_dataset([("u", "a", 1), ("u", "b", 2), ("v", "a", 1), ("v", "b", 2), ("v", "c", 3)]),
                   PrepareConfig(user_core=1, item_core=1))
    split = leave_one_out(data)
    assert split.eval_users("test").tolist() == [1]
    assert split.train_sequence(0).tolist() == [0, 1]


def test_fingerprint_stable_and_sensitive():
    a = leave_one_out(prepare(make_synthetic(n_users=100, seed=1)))
    b = leave_one_out(prepare(make_synthetic(n_users=100, seed=1)))
    c = leave_one_out(prepare(make_synthetic(n_users=100, seed=2)))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_prepared_roundtrip(tmp_path):
    data = prepare(make_synthetic(n_users=50))
    back = PreparedData.load(data.save(tmp_path / "p"))
    pd.testing.assert_frame_equal(back.interactions, data.interactions)
    assert back.catalog["category_path"].tolist() == data.catalog["category_path"].tolist()
    assert back.stats == data.stats and back.user_ids.tolist() == data.user_ids.tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(0, 5)), min_size=1, max_size=60))
def test_split_partitions_every_event(rows):
    data = prepare(_dataset([(f"u{u}", f"i{i}", t) for u, i, t in rows]), PrepareConfig(user_core=1, item_core=1))
    split = leave_one_out(data)
    n_eval = len(split.eval_users("test"))
    assert len(split.train_items) + 2 * n_eval == len(data.interactions)
    hist = split.histories("test", split.eval_users("test"))
    assert np.all(hist.lengths() == split.train_lengths()[split.eval_users("test")] + 1)


def test_split_is_immutable_and_survives_matrix_models():
    from arborec.baselines import ALS, EASE, ItemKNN

    split = leave_one_out(prepare(make_synthetic(n_users=100, seed=5)))
    before = split.fingerprint()
    seq = split.train_sequence(3).copy()
    for model in (ItemKNN(), EASE(), ALS(iterations=2)):
        model.fit(split)
    assert split.fingerprint() == before
    assert split.train_sequence(3).tolist() == seq.tolist()  # time order kept
    with pytest.raises(ValueError):
        split.train_items[0] = 1
