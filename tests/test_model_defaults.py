"""ArboRec's data-fitted defaults: the window from the history lengths, no text -> no text machinery, the tree."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from arborec.data import Dataset, leave_one_out, make_synthetic, prepare
from arborec.diagnostics import ConfigError
from arborec.model import ArboRec, load_bundle, save_bundle
from arborec.model._defaults import auto_window, resolve_defaults, vectors_have_spread

TINY = dict(hidden_size=16, n_layers=1, batch_size=64, eval_every=1, patience=1, max_epochs=2, seed=0)


def _split(dataset):
    data = prepare(dataset)
    return data, leave_one_out(data)


def _vectors(n_items, dim=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n_items, dim)).astype(np.float32)


def _without(dataset, *columns):
    """The same events with a catalogue stripped of ``columns`` (no text: title and brand; no tree: category_path)."""
    return Dataset(name="stripped", interactions=dataset.interactions, catalog=dataset.catalog.drop(columns=list(columns)))


@pytest.fixture(scope="module")
def mixed():
    """Mostly short histories (<= 20 training events) and a few long ones (up to ~70): the auto window
    is 50 and the long users overflow it."""
    short = make_synthetic(n_users=200, items_per_leaf=30, seed=0)
    long = make_synthetic(n_users=12, items_per_leaf=30, min_len=300, max_len=400, seed=1)
    inter = pd.concat([short.interactions, long.interactions.assign(user="L" + long.interactions["user"])])
    return _split(Dataset(name="mixed", interactions=inter, catalog=short.catalog))


def test_auto_window_is_the_smallest_candidate_holding_nine_in_ten_histories():
    assert auto_window(np.full(100, 12)) == (50, 12.0)
    assert auto_window(np.r_[np.full(91, 80), np.full(9, 1000)]) == (100, 80.0)  # the long tail does not count
    assert auto_window(np.r_[np.full(80, 80), np.full(20, 150)])[0] == 200
    assert auto_window(np.full(50, 5000)) == (200, 5000.0)  # the largest: the GRU reads what lies before
    assert auto_window(np.array([0, 0, 7]))[0] == 50  # users without training events are not counted


@pytest.mark.parametrize("shape, window", [(dict(items_per_leaf=12), 50),
                                           (dict(items_per_leaf=150, min_len=250, max_len=500, n_users=120), 100),
                                           (dict(items_per_leaf=200, min_len=400, max_len=800, n_users=100), 200)])
def test_the_window_follows_the_training_history_lengths(shape, window):
    data, split = _split(make_synthetic(**{"n_users": 300, "seed": 1, **shape}))
    chosen = resolve_defaults(split, data, _vectors(split.n_items))
    assert chosen.max_len == window
    q = np.quantile(np.diff(split.train_indptr), 0.9)
    assert q <= window and (window == 50 or q > window // 2)  # covers the 90th percentile, and no bigger than needed
    assert f"max_len={window} (90% of training histories <= {q:.0f} events)" in chosen.describe()
    assert resolve_defaults(split, data, _vectors(split.n_items), max_len=33).max_len == 33  # a given int is kept


def test_text_is_off_without_catalogue_text_or_with_alike_vectors(synthetic):
    data, split = synthetic
    assert resolve_defaults(split, data, _vectors(split.n_items)).has_text
    alike = resolve_defaults(split, data, np.ones((split.n_items, 16), np.float32))
    assert not alike.has_text and "vectors are all alike" in alike.describe()
    assert not vectors_have_spread(np.ones((5, 3))) and vectors_have_spread(np.eye(3))
    no_text, no_text_split = _split(_without(make_synthetic(n_users=300, seed=0), "title", "brand"))
    chosen = resolve_defaults(no_text_split, no_text, _vectors(no_text_split.n_items))  # spread alone is not text
    assert not chosen.has_text and "text off (the catalogue has no item text)" in chosen.describe()
    with pytest.raises(ConfigError, match="tree_source='learned'"):
        resolve_defaults(no_text_split, no_text, _vectors(no_text_split.n_items), tree_source="learned")


def test_no_text_no_categories_trains_and_scores_without_text_or_tree(caplog, tmp_path):
    torch.set_num_threads(1)
    data, split = _split(_without(make_synthetic(n_users=300, seed=0), "title", "brand", "category_path"))
    assert not data.has_text
    with caplog.at_level(logging.INFO, logger="arborec"):
        model = ArboRec(**TINY).fit(split, data, vectors=np.ones((split.n_items, 16), np.float32))
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("arborec defaults:")]
    assert line == [model.defaults_]
    assert "text off (the catalogue has no item text)" in line[0] and "no tree" in line[0]
    assert model.max_len == "auto" and model.max_len_ == 50  # the parameter is left as given
    assert not model.has_text_ and not model.has_tree_ and model.use_text and model.use_heads
    cfg = model.config_
    assert not (cfg.use_text or cfg.use_heads) and model.module_.heads is None
    assert model.text_weight_ == 0.0 and model.pointer_weight_ == 0.0
    assert model.tree_.level_sizes == [1]  # one node holding every item: the service still has a tree
    users = split.eval_users("test")[:20]
    hist = split.histories("test", users)
    scores = model.score(users, hist)
    assert scores.shape == (20, split.n_items) and np.isfinite(scores).all()
    long, short = model.level_distributions(hist)
    assert [p.shape for p in long + short] == [(20, 1), (20, 1)]
    state = model.advance(model.init_state(), hist.sequence(0).tolist())
    np.testing.assert_allclose(model.score_state(state), scores[0], rtol=1e-4, atol=1e-4)
    loaded = load_bundle(save_bundle(model, tmp_path / "b"))
    assert (loaded.max_len_, loaded.has_text_, loaded.has_tree_) == (50, False, False)
    np.testing.assert_allclose(loaded.score(users, hist), scores, rtol=1e-5, atol=1e-5)


def test_no_text_with_category_paths_uses_them(caplog):
    torch.set_num_threads(1)
    data, split = _split(_without(make_synthetic(n_users=300, seed=0), "title", "brand"))
    with caplog.at_level(logging.INFO, logger="arborec"):
        model = ArboRec(**TINY).fit(split, data, vectors=np.ones((split.n_items, 16), np.float32))
    assert "text off" in model.defaults_ and model.defaults_ in caplog.text
    assert "tree from the catalogue's paths (3 levels: 4/8/24 nodes)" in model.defaults_
    assert model.tree_.source == "categories" and model.has_tree_ and not model.has_text_
    assert model.module_.heads is not None and not model.config_.use_text and model.module_.items.parts == ["id"]
    long, _ = model.level_distributions(split.histories("test", split.eval_users("test")[:5]))
    assert [p.shape[1] for p in long] == [4, 8, 24]
    np.testing.assert_allclose(long[-1].sum(1), 1.0, rtol=1e-5)


def test_incremental_state_equals_the_full_sequence_with_the_auto_window(mixed, monkeypatch, tmp_path):
    torch.set_num_threads(1)
    data, split = mixed
    model = ArboRec(**TINY).fit(split, data, vectors=_vectors(split.n_items))
    assert model.max_len_ == 50 and model.has_text_ and model.has_tree_
    monkeypatch.setattr(model, "text_weight_", 1.0)  # every score term on, whatever validation chose
    monkeypatch.setattr(model, "pointer_weight_", 0.2)
    monkeypatch.setattr(model, "pointer_temperature_", 0.05)
    users = split.eval_users("test")
    lengths = split.histories("test", users).lengths()
    users = users[np.argsort(-lengths, kind="stable")[[0, 1, -1]]]  # windows overflowing and not
    hist = split.histories("test", users)
    assert hist.lengths().max() > model.max_len_
    full = model.score(users, hist)
    for b in range(len(users)):
        seq = hist.sequence(b).tolist()
        state = model.init_state()
        for item in seq:
            state = model.advance(state, [item])
        assert state["window"] == seq[-model.max_len_:]
        np.testing.assert_allclose(model.score_state(state), full[b], rtol=1e-4, atol=1e-4)
    loaded = load_bundle(save_bundle(model, tmp_path / "b"))
    assert loaded.max_len_ == 50 and loaded.max_len == "auto" and loaded.config_.max_len == 50
    np.testing.assert_allclose(loaded.score(users, hist), full, rtol=1e-5, atol=1e-5)
