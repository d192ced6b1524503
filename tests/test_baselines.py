"""The matrix baselines: closed forms against direct computation, and better than popularity."""

import json

import numpy as np
import pytest

from arborec.baselines import ALS, EASE, ItemKNN, MostPop
from arborec.recommenders import MODELS, make_model
from arborec.data import Histories
from arborec.diagnostics import ConfigError, NotFittedError
from arborec.evaluate import evaluate


def test_ease_matches_closed_form(synthetic):
    _, split = synthetic
    model = EASE(l2=50.0).fit(split)
    x = split.train_matrix().toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 50.0 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.weights_, b, atol=1e-5)
    assert model.weights_.flags.c_contiguous  # scoring gathers rows: column-major is 20x slower


def test_itemknn_is_cosine_top_k(synthetic):
    _, split = synthetic
    model = ItemKNN(k=5).fit(split)
    x = split.train_matrix().toarray()
    norms = np.linalg.norm(x, axis=0)
    cos = (x.T @ x) / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(cos, 0)
    sim = model.similarity_.toarray()
    for i in range(0, split.n_items, 17):
        nz = np.flatnonzero(sim[i])
        assert len(nz) <= 5
        np.testing.assert_allclose(sim[i, nz], cos[i, nz], rtol=1e-5)
        if len(nz):
            assert sim[i, nz].min() >= np.sort(cos[i])[-5] - 1e-6


@pytest.mark.parametrize("name", ["itemknn", "ease", "als"])
def test_beats_popularity(synthetic, name):
    _, split = synthetic
    pop = evaluate(MostPop().fit(split), split, "valid").metrics["ndcg@10"]
    ours = evaluate(make_model(name).fit(split), split, "valid").metrics["ndcg@10"]
    assert ours > 3 * pop


def test_als_deterministic_and_uses_given_history(synthetic):
    _, split = synthetic
    a, b = ALS(seed=1).fit(split), ALS(seed=1).fit(split)
    hist = Histories(np.array([0, 2]), np.array([3, 7], np.int32))
    np.testing.assert_allclose(a.score(np.array([0]), hist), b.score(np.array([0]), hist), rtol=1e-5)
    other = Histories(np.array([0, 2]), np.array([10, 20], np.int32))
    assert not np.allclose(a.score(np.array([0]), hist), a.score(np.array([0]), other))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_score_before_fit_raises(name):
    with pytest.raises(NotFittedError):
        MODELS[name]().score(np.array([0]), Histories(np.array([0, 1]), np.array([0], np.int32)))


def test_params_validated_and_named():
    with pytest.raises(ConfigError, match="l2"):
        EASE(l2=-1).fit(None)
    with pytest.raises(ValueError, match="no parameter"):
        make_model("ease", lam=3)


def test_cli_evaluate_writes_complete_record(tmp_path, capsys):
    from arborec.cli import main

    out = tmp_path / "r.json"
    assert main(["-q", "evaluate", "--data", "synthetic", "--model", "itemknn", "--tune", "--no-cache",
                 "--output", str(out)]) == 0
    record = json.loads(out.read_text())
    for key in ("dataset", "dataset_stats", "split_hash", "params", "seed", "code_version", "machine",
                "fit_seconds", "eval_seconds", "peak_memory_mb", "date", "command", "tuning"):
        assert key in record, key
    assert set(record["test"]["metrics"]) >= {f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (5, 10, 20)}
    assert "coverage@10" in record["test"]["metrics"]
    assert len(record["tuning"]["trials"]) == 4
    assert "itemknn" in capsys.readouterr().out


def test_cli_benchmark_compares_the_first_model_with_the_others_per_user(tmp_path, capsys):
    from arborec.cli import main
    from arborec.evaluate import paired_comparison, per_user_ndcg

    assert main(["-q", "benchmark", "--data", "synthetic", "--models", "itemknn,mostpop", "--no-cache",
                 "--output-dir", str(tmp_path)]) == 0
    a, b = (per_user_ndcg(np.load(tmp_path / f"synthetic-{m}_ranks.npy")) for m in ("itemknn", "mostpop"))
    c = paired_comparison(a, b)
    line = f"itemknn against mostpop: {c.diff:+.4f} ({c.relative:+.1%})"
    assert line in capsys.readouterr().out and line in (tmp_path / "table.md").read_text()
    record = json.loads((tmp_path / "synthetic-itemknn.json").read_text())
    assert abs(a.mean() - record["test"]["metrics"]["ndcg@10"]) < 1e-4  # the ranks are the test's


def test_cli_reports_unknown_dataset(capsys):
    from arborec.cli import main

    assert main(["-q", "evaluate", "--data", "no-such-data", "--model", "mostpop"]) == 1
    assert "neither a known dataset" in capsys.readouterr().err


def test_cli_params_apply_per_model():
    from arborec.cli._common import parse_params

    pairs = ["seed=3", "sasrec.dropout=0.2", "ease.l2=50", "sasrec.device=cpu"]
    assert parse_params(pairs, "sasrec") == {"seed": 3, "dropout": 0.2, "device": "cpu"}
    assert parse_params(pairs, "ease") == {"seed": 3, "l2": 50}


def test_cli_evaluate_continues_a_stopped_fit_to_the_same_record(tmp_path, monkeypatch):
    from arborec.baselines import SASRec
    from arborec.cli import main

    def run(out):
        return main(["-q", "evaluate", "--data", "synthetic", "--no-cache", "--model", "sasrec", "--output", str(out),
                     "--param=max_epochs=6", "--param=hidden_size=16", "--param=patience=5"])

    assert run(tmp_path / "whole.json") == 0
    whole = json.loads((tmp_path / "whole.json").read_text())

    def stop(epoch, ndcg):
        if epoch == 4:
            raise KeyboardInterrupt  # a stop after epoch 4's validation: the state on disk is epoch 2's
    out = tmp_path / "r.json"
    monkeypatch.setattr(SASRec, "on_validation", staticmethod(stop))
    with pytest.raises(KeyboardInterrupt):
        run(out)
    state = tmp_path / "r.json.training-state.pt"
    assert state.exists() and not out.exists()
    monkeypatch.undo()
    assert run(out) == 0
    record = json.loads(out.read_text())
    assert record["resumed_after_epoch"] == 2 and not state.exists()
    assert "resumed_after_epoch" not in whole
    assert record["valid"]["metrics"] == whole["valid"]["metrics"]
    assert record["test"]["metrics"] == whole["test"]["metrics"]


def test_cli_evaluate_saves_the_test_ranks_for_a_paired_comparison(tmp_path):
    from arborec.cli import main
    from arborec.evaluate import paired_comparison, per_user_ndcg

    runs = {}
    for model in ("mostpop", "itemknn"):
        out = tmp_path / f"{model}.json"
        assert main(["-q", "evaluate", "--data", "synthetic", "--no-cache", "--model", model, "--output", str(out),
                     "--ranks", str(tmp_path / "ranks" / f"{model}.npy")]) == 0
        ranks = np.load(tmp_path / "ranks" / f"{model}.npy")
        record = json.loads(out.read_text())
        assert len(ranks) == record["test"]["n_users"]
        assert per_user_ndcg(ranks).mean() == pytest.approx(record["test"]["metrics"]["ndcg@10"])
        assert (ranks < 10).mean() == pytest.approx(record["test"]["metrics"]["recall@10"])
        runs[model] = per_user_ndcg(ranks)
    paired = paired_comparison(runs["itemknn"], runs["mostpop"])
    assert paired.diff == pytest.approx(runs["itemknn"].mean() - runs["mostpop"].mean())
