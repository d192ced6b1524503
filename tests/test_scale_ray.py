"""The Ray engine on a local 2-CPU instance: same vectors and cache as local encoding, same batch output."""

import numpy as np
import pytest

from arborec.diagnostics import ConfigError
from arborec.scale import _engine, check_engine


def test_engine_switch_validation(monkeypatch):
    assert check_engine("local") == "local"
    with pytest.raises(ConfigError, match="engine"):
        check_engine("spark")
    monkeypatch.setattr(_engine, "ray_available", lambda: False)
    with pytest.raises(ConfigError, match=r"arborec\[ray\]"):
        check_engine("ray")


def test_cli_recommend_local(tmp_path, capsys):
    import pandas as pd

    from arborec.cli import main

    out = tmp_path / "rec.parquet"
    assert main(["-q", "batch-recommend", "--data", "synthetic", "--model", "mostpop", "--k", "5", "--profiles",
                 "--out", str(out), "--no-cache"]) == 0
    table = pd.read_parquet(out)
    assert "engine local" in capsys.readouterr().out
    assert table["user_idx"].is_monotonic_increasing and all(len(x) == 5 for x in table["items"])
    weights = np.stack(table["level1_weights"])  # (n_users, 3) strongest top-level nodes first
    assert np.all(np.diff(weights, axis=1) <= 0) and np.all(weights.sum(axis=1) <= 1 + 1e-5)
    assert weights[:, 0].mean() > 0.5  # the planted users mostly stay under one top category


ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local():
    from arborec.scale import ray_session

    with ray_session(num_cpus=2) as r:
        yield r


def test_encode_on_ray_equals_local_and_shares_the_cache(ray_local, tmp_path, synthetic):
    from arborec.scale import encode_items_ray
    from arborec.text import TextEncoder, encode_items

    catalog = synthetic[0].catalog
    local = encode_items(catalog, TextEncoder(backend="torch"), cache_dir=tmp_path / "local")
    on_ray = encode_items_ray(catalog, TextEncoder(backend="torch"), cache_dir=tmp_path / "ray", actors=2,
                               rows_per_task=64)  # 3 blocks, reassembled in catalogue order
    assert on_ray.shape == local.shape
    np.testing.assert_allclose(on_ray, local, atol=2e-5)  # fp32; only batch padding differs

    class NoEncoding(TextEncoder):
        def encode(self, texts, progress=False):
            raise AssertionError(f"{len(texts)} texts were not in the cache")

    again = encode_items(catalog, NoEncoding(backend="torch"), cache_dir=tmp_path / "ray")
    np.testing.assert_array_equal(again, on_ray)  # a later local run reads the Ray run's cache back


def test_batch_recommend_on_ray_equals_local(ray_local, tmp_path, synthetic):
    from arborec.baselines import EASE
    from arborec.hierarchy import tree_from_categories
    from arborec.profiles import ProfileBuilder
    from arborec.scale import batch_recommend, batch_recommend_ray, read_batch_output

    data, split = synthetic
    model = EASE(l2=50.0).fit(split)
    builder = ProfileBuilder(tree_from_categories(data.catalog)).fit(split.histories("test", np.arange(split.n_users)))
    local = batch_recommend(model, split, k=10, profiles=builder, batch_size=128, output=tmp_path / "local.parquet")
    folder = batch_recommend_ray(model, split, tmp_path / "ray", k=10, profiles=builder, batch_size=128, actors=2)
    on_ray = read_batch_output(folder)
    assert len(on_ray) == split.n_users and list(on_ray.columns) == list(local.columns)
    assert {"level1_nodes", "level3_weights"} <= set(local.columns)
    for column in local.columns:
        np.testing.assert_array_equal(np.stack(on_ray[column]) if column != "user_idx" else on_ray[column],
                                      np.stack(local[column]) if column != "user_idx" else local[column])
    # the recommendations are real: never an item of the user's history, best first
    hist = split.histories("test", np.arange(split.n_users))
    for u in range(0, split.n_users, 50):
        assert not set(local["items"][u]) & set(hist.sequence(u))
        assert np.all(np.diff(local["scores"][u]) <= 0)


def test_fit_on_ray_train_matches_local(ray_local, synthetic):
    from arborec.baselines import MostPop, SASRec
    from arborec.evaluate import evaluate
    from arborec.scale import fit_ray

    _, split = synthetic
    params = dict(max_epochs=4, eval_every=100, hidden_size=32, seed=0)
    local = SASRec(**params).fit(split)
    on_ray = fit_ray(SASRec(**params), split, workers=2)  # 2 DDP workers (gloo), 1 CPU each
    assert on_ray.module_ is not None and on_ray.n_items_ == split.n_items
    # the same steps on the same batches: loss and test NDCG agree within noise
    assert abs(on_ray.history_[-1]["loss"] - local.history_[-1]["loss"]) < 0.05 * local.history_[-1]["loss"]
    ndcg_local = evaluate(local, split, "test").metrics["ndcg@10"]
    ndcg_ray = evaluate(on_ray, split, "test").metrics["ndcg@10"]
    assert abs(ndcg_ray - ndcg_local) < 0.05
    mostpop = evaluate(MostPop().fit(split), split, "test").metrics["ndcg@10"]
    assert ndcg_ray > 2 * mostpop  # it learned the sequences, not only popularity


def test_arborec_on_ray_train_gives_a_bundle(ray_local, synthetic, tmp_path):
    from arborec.data import Histories
    from arborec.model import ArboRec, load_bundle, save_bundle
    from arborec.scale import fit_ray

    data, split = synthetic
    vectors = np.random.default_rng(0).normal(size=(split.n_items, 16)).astype(np.float32)
    tiny = dict(hidden_size=16, n_layers=1, max_len=12, batch_size=64, max_epochs=2, seed=0)
    model = fit_ray(ArboRec(**tiny), split, data, workers=2, vectors=vectors)
    assert model.tree_.n_items == split.n_items and model.text_weight_ >= 0  # setup and finish ran
    loaded = load_bundle(save_bundle(model, tmp_path / "bundle"))
    hist = Histories(np.array([0, 3, 5]), np.array([1, 2, 3, 7, 8], dtype=np.int32))
    np.testing.assert_allclose(loaded.score(np.arange(2), hist), model.score(np.arange(2), hist), atol=1e-5)


def test_fit_on_ray_train_stops_early_and_keeps_the_best_epoch(ray_local, synthetic):
    from arborec.evaluate import evaluate
    from arborec.scale import fit_ray

    _, split = synthetic
    model = fit_ray(SASRec_small(max_epochs=40, eval_every=1, patience=1), split, workers=2)
    ndcgs = [r["valid_ndcg@10"] for r in model.history_]
    assert all(v is not None for v in ndcgs) and [r["epoch"] for r in model.history_] == list(range(1, len(ndcgs) + 1))
    assert len(ndcgs) < 40 and ndcgs[-1] <= max(ndcgs[:-1])  # stopped at the first check without a new best
    assert model.best_epoch_ == 1 + int(np.argmax(ndcgs)) and model.best_valid_ndcg_ == max(ndcgs)
    # the weights that came back are the best epoch's, not the last one's (validated on rank 0, same protocol)
    assert evaluate(model, split, "valid").metrics["ndcg@10"] == pytest.approx(model.best_valid_ndcg_, abs=1e-6)
    assert model.epoch_seconds_ > 0 and all(r["eval_seconds"] > 0 for r in model.history_)


def SASRec_small(**params):
    from arborec.baselines import SASRec

    return SASRec(hidden_size=32, max_len=20, batch_size=64, lr=3e-3, seed=0, **params)
