"""ArboRec's data-fitted defaults: the window and the training regime from the history lengths, no text -> no text
machinery (and the tree's path nodes in the item table), the tree."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch

import arborec.sequential._recommender
from arborec.data import Dataset, leave_one_out, make_synthetic, prepare
from arborec.diagnostics import ConfigError
from arborec.model import ArboRec, load_bundle, save_bundle
from arborec.model._defaults import BATCH, BEHAVIOUR_TREE_MIN_ITEMS, LR_BATCH, PREFIX_MAX_COST, auto_window, prefix_cost, resolve_defaults, vectors_have_spread
from arborec.sequential import prefix_windows, training_windows

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
    small = make_synthetic(n_users=300, items_per_leaf=8, seed=0)  # 192 items: too few to learn a tree from
    data, split = _split(_without(small, "title", "brand", "category_path"))
    assert split.n_items < BEHAVIOUR_TREE_MIN_ITEMS
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


def test_no_text_no_categories_learns_the_tree_from_co_occurrence_for_profiles_only():
    torch.set_num_threads(1)
    full = make_synthetic(n_users=400, seed=0)  # 288 items under 4 planted top categories
    data, split = _split(_without(full, "title", "brand", "category_path"))
    assert split.n_items >= BEHAVIOUR_TREE_MIN_ITEMS
    model = ArboRec(**TINY).fit(split, data, vectors=np.ones((split.n_items, 16), np.float32))
    assert "tree learned from co-occurrence" in model.defaults_ and model.tree_.source == "behaviour"
    assert model.has_tree_ and not model.tree_in_items_ and model.module_.items.parts == ["id"]
    assert model.module_.heads is not None
    # users who stay within planted categories make items of one category co-occur: the learned top
    # level follows the planted one far better than chance (purity: share of items in their node's
    # most common planted category; about 1/4 by chance)
    planted = full.catalog.set_index("item").loc[data.catalog["item"], "category_path"].map(lambda p: p[0]).to_numpy()
    top = model.tree_.codes[:, 0]
    purity = sum(pd.Series(planted[top == n]).value_counts().iloc[0] for n in np.unique(top)) / len(top)
    assert purity > 0.6
    long, short = model.level_distributions(split.histories("test", split.eval_users("test")[:5]))
    assert [p.shape[1] for p in long] == model.tree_.level_sizes
    np.testing.assert_allclose(short[-1].sum(1), 1.0, rtol=1e-5)


def test_no_text_with_category_paths_uses_them_for_the_heads_and_the_item_table(caplog, tmp_path):
    torch.set_num_threads(1)
    data, split = _split(_without(make_synthetic(n_users=300, seed=0), "title", "brand"))
    with caplog.at_level(logging.INFO, logger="arborec"):
        model = ArboRec(**TINY).fit(split, data, vectors=np.ones((split.n_items, 16), np.float32))
    assert "text off" in model.defaults_ and model.defaults_ in caplog.text
    assert ("tree from the catalogue's paths (3 levels: 4/8/24 nodes), its path nodes in the item table"
            in model.defaults_)
    assert model.tree_.source == "categories" and model.has_tree_ and not model.has_text_ and model.tree_in_items_
    assert model.module_.heads is not None and not model.config_.use_text
    assert model.module_.items.parts == ["id", "tree"]
    # an item's tree part is the sum of its path nodes' embeddings: two items on one path share it
    items = model.module_.items
    codes = model.tree_.codes
    a, b = np.flatnonzero((codes == codes[0]).all(1))[:2]
    tree_part = [sum(emb.weight[codes[i, lv]] for lv, emb in enumerate(items.node_emb)) for i in (a, b)]
    torch.testing.assert_close(tree_part[0], tree_part[1])
    users = split.eval_users("test")[:5]
    hist = split.histories("test", users)
    long, _ = model.level_distributions(hist)
    assert [p.shape[1] for p in long] == [4, 8, 24]
    np.testing.assert_allclose(long[-1].sum(1), 1.0, rtol=1e-5)
    scores = model.score(users, hist)
    state = model.advance(model.init_state(), hist.sequence(0).tolist())  # the service's path reads the same table
    np.testing.assert_allclose(model.score_state(state), scores[0], rtol=1e-4, atol=1e-4)
    loaded = load_bundle(save_bundle(model, tmp_path / "b"))
    assert loaded.config_.use_tree and loaded.tree_in_items_
    np.testing.assert_allclose(loaded.score(users, hist), scores, rtol=1e-5, atol=1e-5)
    no_tree = ArboRec(**TINY, use_heads=False).fit(split, data, vectors=np.ones((split.n_items, 16), np.float32))
    assert no_tree.module_.items.parts == ["id"] and no_tree.module_.heads is None  # the ablation: no tree at all
    assert not no_tree.tree_in_items_ and "use_heads=False: the model holds no tree" in no_tree.defaults_


def test_prefix_cost_counts_the_positions_each_regime_reads():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 120, size=300)
    indptr = np.r_[0, np.cumsum(lengths)]
    items = rng.integers(0, 50, size=indptr[-1])
    for max_len in (3, 20, 50):
        every = (training_windows(indptr, items, max_len)[0] > 0).sum()
        prefix = (prefix_windows(indptr, items, max_len)[0] > 0).sum()
        assert prefix_cost(lengths, max_len) == pytest.approx(prefix / every)
    assert prefix_cost(np.full(10, 2), 50) == 1.0  # one target each: the regimes coincide
    assert prefix_cost(np.array([0, 1]), 50) == 1.0  # nobody to train


@pytest.mark.parametrize("shape, regime", [(dict(items_per_leaf=12), "prefix"),
                                           (dict(items_per_leaf=150, min_len=250, max_len=500, n_users=120), "every")])
def test_the_regime_follows_the_cost_of_prefixes(shape, regime):
    data, split = _split(make_synthetic(**{"n_users": 300, "seed": 1, **shape}))
    chosen = resolve_defaults(split, data, _vectors(split.n_items))
    cost = prefix_cost(np.diff(split.train_indptr), chosen.max_len)
    assert (cost <= PREFIX_MAX_COST) == (regime == "prefix") and chosen.regime == regime
    assert f"prefixes cost {cost:.1f}x the positions" in chosen.describe()
    assert resolve_defaults(split, data, _vectors(split.n_items), regime="every").regime == "every"


def test_prefix_training_reads_one_target_per_example(synthetic, monkeypatch):
    torch.set_num_threads(1)
    data, split = synthetic
    targets = []
    real_loss = ArboRec._loss

    def spy(self, seq, tgt):
        targets.append((tgt > 0).sum(1))
        return real_loss(self, seq, tgt)

    monkeypatch.setattr(ArboRec, "_loss", spy)
    model = ArboRec(**TINY, regime="prefix").fit(split, data, vectors=_vectors(split.n_items))
    assert model.regime_ == "prefix" and "training on one prefix per target (given)" in model.defaults_
    assert all((t == 1).all() for t in targets)  # one target per example, at its last position
    lengths = np.diff(split.train_indptr)
    per_epoch = np.minimum(lengths[lengths >= 2] - 1, model.max_len_).sum()  # every target once
    assert sum(len(t) for t in targets) == len(model.history_) * per_epoch


@pytest.mark.parametrize("regime", ["prefix", "every"])
def test_the_batch_follows_the_regime_and_the_loop_trains_with_it(synthetic, monkeypatch, regime):
    torch.set_num_threads(1)
    data, split = synthetic
    chosen = resolve_defaults(split, data, _vectors(split.n_items), regime=regime)
    assert chosen.batch_size == BATCH[regime] and f"{BATCH[regime]} {'prefixes' if regime == 'prefix' else 'windows'} per step" in chosen.describe()
    assert chosen.lr_scale == pytest.approx(np.sqrt(BATCH[regime] / LR_BATCH))
    assert ("x the lr" in chosen.describe()) == (chosen.lr_scale != 1)
    given = resolve_defaults(split, data, _vectors(split.n_items), regime=regime, batch_size=32)
    assert (given.batch_size, given.lr_scale) == (32, 1.0)  # a given batch trains at the lr given
    assert BATCH["prefix"] > BATCH["every"] == LR_BATCH  # a prefix holds one target, a window many
    rates = []
    real_adam = arborec.sequential._recommender.adam
    monkeypatch.setattr(arborec.sequential._recommender, "adam", lambda params, lr, *a: rates.append(lr) or real_adam(params, lr, *a))
    sizes = []
    real_loss = ArboRec._loss

    def spy(self, seq, tgt):
        sizes.append(len(seq))
        return real_loss(self, seq, tgt)

    monkeypatch.setattr(ArboRec, "_loss", spy)
    params = {k: v for k, v in TINY.items() if k != "batch_size"} | dict(max_epochs=1)
    model = ArboRec(**params, regime=regime).fit(split, data, vectors=_vectors(split.n_items))
    n_examples = len(model._training_pairs(split)[0])
    assert model.batch_size_ == BATCH[regime] and max(sizes) == min(BATCH[regime], n_examples)
    assert rates == [pytest.approx(model.lr * chosen.lr_scale)] and model.lr_ == rates[0]
    assert sum(sizes) == n_examples and len(sizes) == -(-n_examples // BATCH[regime])
    with pytest.raises(ConfigError, match="batch_size"):
        ArboRec(batch_size="big").fit(split, data, vectors=_vectors(split.n_items))


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


def test_bundles_of_earlier_versions(synthetic, tmp_path):
    """0.2 bundles (no regime, no tree part) load as they were trained; 0.1 bundles (a tree score term) are refused."""
    import json

    torch.set_num_threads(1)
    data, split = synthetic
    model = ArboRec(**TINY).fit(split, data, vectors=_vectors(split.n_items))
    path = save_bundle(model, tmp_path / "b")
    config = json.loads((path / "config.json").read_text())
    assert config["regime_"] == model.regime_ and config["network"]["use_tree"] is False
    del config["regime_"], config["network"]["use_tree"]  # what 0.2 wrote
    (path / "config.json").write_text(json.dumps(config))
    old = load_bundle(path)
    assert old.regime_ == "every" and not old.config_.use_tree and old.module_.items.parts == ["id", "text"]
    (path / "config.json").write_text(json.dumps({**config, "path_weight_": 0.5}))  # what 0.1 wrote
    with pytest.raises(ConfigError, match="before 0.2"):
        load_bundle(path)
