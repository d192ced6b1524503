"""SASRec and GRU4Rec: shapes, causality, padding, determinism, learning, early stopping, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arborec.baselines.gru4rec import GRU4Rec, GRU4RecConfig, GRU4RecModule
from arborec.baselines.popularity import MostPop
from arborec.baselines.sasrec import SASRec, SASRecConfig, SASRecModule
from arborec.data import Histories
from arborec.diagnostics import ConfigError, NotFittedError
from arborec.evaluate import evaluate
from arborec.sequential import full_softmax_cross_entropy, pad_left, training_windows

N_ITEMS = 30
MODULES = {
    "sasrec": lambda: SASRecModule(SASRecConfig(n_items=N_ITEMS, max_len=8, hidden_size=16, n_layers=2, n_heads=2)),
    "gru4rec": lambda: GRU4RecModule(GRU4RecConfig(n_items=N_ITEMS, hidden_size=16, n_layers=2)),
}
MODELS = {"sasrec": SASRec, "gru4rec": GRU4Rec}
SMALL = dict(hidden_size=32, max_len=20, batch_size=64, lr=3e-3)  # quick to train on the synthetic data


def _module(name):
    torch.manual_seed(0)
    return MODULES[name]().eval()


def _seqs(rng, lengths, max_len):
    """Left-padded (B, max_len) int64 of random item ids + 1."""
    out = np.zeros((len(lengths), max_len), dtype=np.int64)
    for b, n in enumerate(lengths):
        out[b, max_len - n:] = rng.integers(1, N_ITEMS + 1, size=n)
    return torch.from_numpy(out)


# -- data helpers -------------------------------------------------------------------------------

def test_pad_left_matches_histories_to_padded():
    indptr = np.array([0, 0, 1, 4, 10])
    items = np.arange(10, dtype=np.int32)
    for max_len in (1, 3, 6, 12):
        assert np.array_equal(pad_left(indptr, items, max_len), Histories(indptr, items).to_padded(max_len))


def test_training_windows_targets_are_the_next_items():
    indptr = np.array([0, 1, 3, 10])  # lengths 1 (no target), 2, 7
    items = np.arange(10, dtype=np.int32)
    inputs, targets = training_windows(indptr, items, max_len=4)
    assert inputs.tolist() == [[0, 0, 0, 2], [6, 7, 8, 9]]
    assert targets.tolist() == [[0, 0, 0, 3], [7, 8, 9, 10]]
    inputs, targets = training_windows(indptr, items, max_len=4, earlier_windows=True)
    # the 6 targets of the last user: the most recent 4, then the 2 before them
    assert targets.tolist() == [[0, 0, 0, 3], [7, 8, 9, 10], [0, 0, 5, 6]]
    assert inputs.tolist() == [[0, 0, 0, 2], [6, 7, 8, 9], [0, 0, 4, 5]]


def test_fused_cross_entropy_matches_the_plain_one():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(100, 8, generator=g, requires_grad=True)
    w = torch.randn(5000, 8, generator=g, requires_grad=True)  # > 1 chunk of rows
    t = torch.randint(0, 5000, (100,), generator=g)
    loss = full_softmax_cross_entropy(h, w, t)
    (2 * loss).backward()
    h2, w2 = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = F.cross_entropy(h2 @ w2.T, t)
    (2 * ref).backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(h.grad, h2.grad)
    torch.testing.assert_close(w.grad, w2.grad)


# -- the networks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODULES)
def test_module_output_shape(name):
    seq = _seqs(np.random.default_rng(0), [8, 3, 0, 1], 8)
    assert _module(name)(seq).shape == (4, 8, 16)


@pytest.mark.parametrize("name", MODULES)
def test_later_items_do_not_change_earlier_positions(name):
    module = _module(name)
    seq = _seqs(np.random.default_rng(1), [8, 6], 8)
    changed = seq.clone()
    changed[:, 5] = changed[:, 5] % N_ITEMS + 1  # another item at position 5
    changed[:, 7] = 0 if name == "sasrec" else changed[:, 7]  # ... and padding where a later item was
    with torch.no_grad():
        a, b = module(seq), module(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("name", MODULES)
def test_left_padding_does_not_change_the_last_position(name):
    module = _module(name)
    seq = _seqs(np.random.default_rng(2), [5], 5)  # (1, 5), no padding
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.int64), seq], dim=1)  # (1, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(seq)[:, -1], module(padded)[:, -1])


@pytest.mark.parametrize("name", MODELS)
def test_score_shape_and_batch_independence(name, synthetic):
    _, split = synthetic
    model = MODELS[name](**SMALL, max_epochs=1).fit(split)
    users = split.eval_users("test")[:50]
    hist = split.histories("test", users)
    scores = model.score(users, hist)
    assert scores.shape == (50, split.n_items) and scores.dtype == np.float32
    # a user's scores do not depend on who else is in the batch (and on how much padding that adds)
    one = model.score(users[7:8], split.histories("test", users[7:8]))
    np.testing.assert_allclose(one[0], scores[7], rtol=1e-5, atol=1e-5)


# -- training -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_model(name, synthetic):
    _, split = synthetic
    users = split.eval_users("valid")[:20]
    hist = split.histories("valid", users)
    a = MODELS[name](**SMALL, max_epochs=2, seed=3).fit(split).score(users, hist)
    b = MODELS[name](**SMALL, max_epochs=2, seed=3).fit(split).score(users, hist)
    c = MODELS[name](**SMALL, max_epochs=2, seed=4).fit(split).score(users, hist)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("name", MODELS)
def test_training_beats_most_popular(name, synthetic):
    _, split = synthetic
    model = MODELS[name](**SMALL, max_epochs=20, eval_every=5).fit(split)
    ndcg = evaluate(model, split, "valid").metrics["ndcg@10"]
    pop = evaluate(MostPop().fit(split), split, "valid").metrics["ndcg@10"]
    assert ndcg > 2 * pop and ndcg > pop + 0.05, (ndcg, pop)
    assert ndcg == pytest.approx(model.best_valid_ndcg_)
    assert len(model.history_) == 20 and model.epoch_seconds_ > 0
    losses = [r["loss"] for r in model.history_]
    assert losses[-1] < losses[0]


def test_early_stopping_restores_the_best_weights(synthetic, monkeypatch):
    import arborec.evaluate

    _, split = synthetic
    scripted = iter([0.10, 0.30, 0.20, 0.25, 0.50])  # best at epoch 2, then 2 worse: stop at 4
    snapshots = []

    class FakeEvaluation:
        def __init__(self, ndcg):
            self.metrics = {"ndcg@10": ndcg}

    def fake_evaluate(model, split, stage):
        assert stage == "valid"
        snapshots.append({k: v.clone() for k, v in model.module_.state_dict().items()})
        return FakeEvaluation(next(scripted))

    monkeypatch.setattr(arborec.evaluate, "evaluate", fake_evaluate)
    model = SASRec(**SMALL, max_epochs=10, eval_every=1, patience=2).fit(split)
    assert [r["valid_ndcg@10"] for r in model.history_] == [0.10, 0.30, 0.20, 0.25]
    assert model.best_epoch_ == 2 and model.best_valid_ndcg_ == 0.30
    for key, value in model.module_.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][key])
    assert not torch.equal(model.module_.item_emb.weight, snapshots[3]["item_emb.weight"])


class _Stop(Exception):
    """Stands for a kill between two validations."""


@pytest.mark.parametrize("name", MODELS)
def test_a_stopped_fit_resumes_and_ends_where_an_unstopped_one_does(name, synthetic, tmp_path, caplog):
    _, split = synthetic
    params = dict(**SMALL, max_epochs=6, eval_every=2, patience=10, seed=1)
    whole = MODELS[name](**params).fit(split)

    stopped = MODELS[name](**params)
    stopped.resume_path = tmp_path / "state.pt"

    def stop_at_4(epoch, ndcg):
        if epoch == 4:
            raise _Stop  # after epoch 4's validation, before its state is saved: epochs 3-4 are lost
    stopped.on_validation = stop_at_4
    with pytest.raises(_Stop):
        stopped.fit(split)

    resumed, seen = MODELS[name](**params), []
    resumed.resume_path = tmp_path / "state.pt"
    resumed.on_validation = lambda epoch, ndcg: seen.append(epoch)
    with caplog.at_level("INFO", logger="arborec"):
        resumed.fit(split)
    assert resumed.resumed_epochs_ == 2 and resumed.resumed_seconds_ > 0
    epoch_3 = next(r.getMessage() for r in caplog.records if f"{name} epoch 3/6" in r.getMessage())
    assert f"best {whole.history_[1]['valid_ndcg@10']:.4f} @2" in epoch_3  # the progress line goes on from the state
    assert seen == [2, 4, 6]  # the saved validation reported again, then the new ones
    assert [r["valid_ndcg@10"] for r in resumed.history_] == [r["valid_ndcg@10"] for r in whole.history_]
    assert [r["loss"] for r in resumed.history_] == [r["loss"] for r in whole.history_]
    for key, value in whole.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[key], value, rtol=0, atol=0)

    # a finished fit's state: a fit of the same run reads it back and trains nothing
    again = MODELS[name](**params)
    again.resume_path = tmp_path / "state.pt"
    again.fit(split)
    assert again.resumed_epochs_ == 6 and again.best_epoch_ == whole.best_epoch_
    torch.testing.assert_close(again.module_.item_emb.weight, whole.module_.item_emb.weight, rtol=0, atol=0)

    # another run's state is not resumed (and says so)
    other = MODELS[name](**{**params, "lr": 1e-3})
    other.resume_path = tmp_path / "state.pt"
    with caplog.at_level("WARNING", logger="arborec"):
        other.fit(split)
    assert other.resumed_epochs_ == 0 and len(other.history_) == 6
    assert "belongs to another run" in caplog.text


def test_eval_every_and_last_epoch(synthetic, monkeypatch):
    _, split = synthetic
    model = GRU4Rec(**SMALL, max_epochs=5, eval_every=2, patience=10).fit(split)
    evaluated = [r["epoch"] for r in model.history_ if r["valid_ndcg@10"] is not None]
    assert evaluated == [2, 4, 5]


# -- the contract ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_score_before_fit_raises(name):
    hist = Histories(np.array([0, 2]), np.array([1, 2], dtype=np.int32))
    with pytest.raises(NotFittedError):
        MODELS[name]().score(np.array([0]), hist)


@pytest.mark.parametrize("name", MODELS)
def test_params_round_trip_and_validation(name, synthetic):
    model = MODELS[name]()
    params = model.get_params()
    assert {"hidden_size", "n_layers", "max_len", "dropout", "lr", "weight_decay", "batch_size", "max_epochs",
            "patience", "eval_every", "seed", "device", "verbose"} <= set(params)
    assert type(model)(**params).get_params() == params
    assert set(model.search_space) <= set(params)
    with pytest.raises(ConfigError):
        MODELS[name](dropout=1.0).fit(synthetic[1])


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_sampled_softmax_above_the_threshold_never_forms_full_logits(name, synthetic, monkeypatch):
    """Above ``sampled_above`` items the loss never scores the whole catalogue, and the model still learns."""
    import arborec.sequential._recommender as seq_mod

    _, split = synthetic
    full_calls = []
    real = seq_mod.full_softmax_cross_entropy
    monkeypatch.setattr(seq_mod, "full_softmax_cross_entropy", lambda *a: full_calls.append(1) or real(*a))
    model = MODELS[name](**SMALL, max_epochs=8, eval_every=4, seed=0, sampled_above=split.n_items - 1,
                         n_negatives=64).fit(split)
    assert not full_calls  # every step took the sampled path: (N, 1 + 64) logits, not (N, n_items)
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
    ndcg = evaluate(model, split, "test").metrics["ndcg@10"]
    mostpop = evaluate(MostPop().fit(split), split, "test").metrics["ndcg@10"]
    assert ndcg > 1.5 * mostpop  # sampled training learns the sequences too
    below = MODELS[name](**SMALL, max_epochs=1, seed=0).fit(split)  # default threshold: full softmax
    assert full_calls and below.sampled_above == 100_000


def test_weight_decay_is_decoupled_as_in_the_published_recipes():
    """``weight_decay`` is AdamW's: with no gradient a weight shrinks by lr * decay per step (Adam's L2 penalty
    would instead move it by about lr, whatever its size); with no decay the update is Adam's, bit for bit."""
    from arborec.sequential import adam

    w = torch.nn.Parameter(torch.full((3,), 2.0))
    opt = adam([w], 0.1, 0.01, torch.device("cpu"))
    w.grad = torch.zeros_like(w)
    opt.step()
    assert torch.allclose(w.detach(), torch.full((3,), 2.0 * (1 - 0.1 * 0.01)))

    def trained(make):
        torch.manual_seed(0)
        v = torch.nn.Parameter(torch.randn(5))
        o = make([v])
        for step in range(20):
            o.zero_grad()
            ((v - step / 10) ** 2).sum().backward()
            o.step()
        return v.detach()

    ours = trained(lambda p: adam(p, 1e-2, 0.0, torch.device("cpu")))
    assert torch.equal(ours, trained(lambda p: torch.optim.Adam(p, lr=1e-2, fused=True)))
