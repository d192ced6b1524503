"""The learned text pointer: its mixture likelihood, its bounds, and a model that learns it end to end."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arborec.data import Histories
from arborec.diagnostics import ConfigError
from arborec.model import ArboRec, load_bundle, save_bundle
from arborec.model._pointer import (TEMPERATURE_BOUNDS, TextPointer, _mixture_nll_plain, _MixtureCE, window_items,
                                    window_profiles)
from arborec.model._text_score import TEXT_DECAY
from arborec.sequential import pad_left

TINY = dict(hidden_size=16, n_layers=1, max_len=12, batch_size=64, eval_every=1, patience=2, seed=0)


def _batch(seed=0, B=5, W=7, V=40, d=6):
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(1, V + 1, (B, W), generator=g)
    seq[0, :3] = 0
    seq[1, :5] = 0
    tgt = torch.randint(1, V + 1, (B, W), generator=g)
    tgt[seq == 0] = 0
    tgt[2, 3] = seq[2, 1]  # a target the user had already: the pointer gives it nothing
    unit = F.normalize(torch.randn(V, d, generator=g), dim=1)
    return seq, tgt, unit


def test_window_profiles_and_items_follow_each_target_row():
    seq, tgt, unit = _batch()
    mask = tgt > 0
    profiles, window = window_profiles(seq, mask, unit, 0.7), window_items(seq, mask)
    for n, (b, t) in enumerate(mask.nonzero().tolist()):
        acc = sum(0.7 ** (t - s) * unit[seq[b, s] - 1] for s in range(t + 1) if seq[b, s] > 0)
        torch.testing.assert_close(profiles[n], F.normalize(acc, dim=0))
        assert set(window[n].tolist()) == {int(i) - 1 for i in seq[b, :t + 1] if i > 0}  # nothing after t


def test_chunked_mixture_likelihood_equals_autograd():
    seq, tgt, unit = _batch(1)
    mask = tgt > 0
    N, V, D = int(mask.sum()), unit.shape[0], 8
    g = torch.Generator().manual_seed(2)
    leaves = [torch.randn(N, D, dtype=torch.float64, generator=g), torch.randn(V, D, dtype=torch.float64, generator=g),
              torch.randn(N, dtype=torch.float64, generator=g), torch.tensor(1.5, dtype=torch.float64),
              torch.tensor(7.0, dtype=torch.float64)]
    leaves = [x.requires_grad_() for x in leaves]
    rest = (window_profiles(seq, mask, unit, 0.7).double(), unit.double(), tgt[mask] - 1, window_items(seq, mask))
    chunked = _MixtureCE.apply(*leaves, *rest, 3)  # chunks of 3 rows: several, one of them short
    plain = _mixture_nll_plain(*leaves, *rest)
    torch.testing.assert_close(chunked, plain)
    for a, b in zip(torch.autograd.grad(chunked, leaves), torch.autograd.grad(plain, leaves)):
        torch.testing.assert_close(a, b)
    # a gate shut (g -> 0) leaves the model's cross-entropy with the text term in its logits
    leaves[2].data.fill_(-40.0)
    cos = rest[0] @ rest[1].T
    ce = F.cross_entropy(leaves[0] @ leaves[1].T + 1.5 * cos, rest[2])
    torch.testing.assert_close(_MixtureCE.apply(*leaves, *rest, 4), ce)


def test_the_learned_gate_and_temperature_stay_in_bounds():
    pointer = TextPointer(4, torch.randn(10, 3))
    gate = torch.sigmoid(pointer.gate_logit(torch.randn(50, 4) * 1e3))
    assert ((gate >= 0) & (gate <= 1)).all()
    assert torch.allclose(torch.sigmoid(pointer.gate_logit(torch.randn(3, 4))), torch.tensor(0.1))  # the start
    for value in (-50.0, 50.0):  # pushed far out either way: clamped to the bounds
        pointer.log_inv_temperature.data.fill_(value)
        t = 1.0 / pointer.inv_temperature().item()
        assert TEMPERATURE_BOUNDS[0] - 1e-9 <= t <= TEMPERATURE_BOUNDS[1] + 1e-9
        pointer.text_weight_raw.data.fill_(value)
        assert pointer.text_weight().item() >= 0
    torch.testing.assert_close(pointer.unit.norm(dim=1), torch.ones(10))


@pytest.fixture(scope="module")
def learned(synthetic):
    data, split = synthetic
    torch.set_num_threads(1)
    vectors = np.random.default_rng(0).normal(size=(split.n_items, 16)).astype(np.float32)
    model = ArboRec(max_epochs=6, pointer_weight="learned", **TINY).fit(split, data, vectors=vectors)
    return data, split, model


def test_a_learned_pointer_scores_the_mixture_it_was_trained_on(learned):
    data, split, model = learned
    p = model.module_.pointer
    assert p is not None and model.text_weight_ == pytest.approx(p.text_weight().item())
    assert not hasattr(model, "pointer_scores_")  # nothing chosen after training
    assert 0 < model.pointer_weight_ < 1 and model.text_weight_ >= 0
    assert p.log_inv_temperature.item() != pytest.approx(np.log(50.0))  # it learned: moved from its start
    users = split.eval_users("test")[:6]
    hist = split.histories("test", users)
    match, text, gate = model._score_parts(hist)
    logits = torch.from_numpy(match + model.text_weight_ * text).double()
    ptr = torch.from_numpy(text).double() / model.pointer_temperature_
    outside = torch.ones_like(logits, dtype=torch.bool)
    for b in range(len(users)):
        outside[b, torch.from_numpy(hist.sequence(b)[-model.max_len_:])] = False
    g = torch.sigmoid(torch.from_numpy(gate).double())[:, None]
    expected = (1 - g) * torch.softmax(logits, 1) + g * torch.softmax(ptr.masked_fill(~outside, -torch.inf), 1)
    scores = model.score(users, hist)
    torch.testing.assert_close(torch.from_numpy(np.exp(scores.astype(np.float64))) * outside, expected * outside,
                               rtol=1e-3, atol=1e-7)
    assert np.isfinite(scores).all() and len(set(np.round(1 / (1 + np.exp(-gate)), 6))) > 1  # a gate per user
    # the serving state gives the same scores, and a bundle too
    for b in range(2):
        state = model.advance(model.init_state(), hist.sequence(b).tolist())
        np.testing.assert_allclose(model.score_state(state), scores[b], rtol=1e-4, atol=1e-4)


def test_a_learned_pointer_survives_a_bundle_and_refuses_what_it_cannot_do(learned, tmp_path):
    data, split, model = learned
    path = save_bundle(model, tmp_path / "b", item_ids=data.catalog["item"], user_ids=data.user_ids,
                       histories=Histories(split.train_indptr, split.train_items))
    users = split.eval_users("test")[:5]
    np.testing.assert_allclose(load_bundle(path).score(users, split.histories("test", users)),
                               model.score(users, split.histories("test", users)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="another training"):
        model.with_score_knobs(split, pointer_weight=0.0)
    with pytest.raises(ConfigError, match="text_weight/pointer_temperature"):
        ArboRec(pointer_weight="learned", text_weight=2.0, **TINY).fit(split, data, vectors=model.vectors_)
    with pytest.raises(ConfigError, match="full softmax"):
        ArboRec(pointer_weight="learned", sampled_above=10, **TINY).fit(split, data, vectors=model.vectors_)


def test_training_profiles_are_the_scoring_text_interest(learned):
    _, split, model = learned
    users = split.eval_users("test")[:4]
    hist = split.histories("test", users)
    seq = torch.from_numpy(pad_left(hist.indptr, hist.items, model.max_len_))  # (B, W) ids + 1, left-padded
    mask = torch.zeros_like(seq, dtype=torch.bool)
    mask[:, -1] = True  # the last position of each window
    cos = window_profiles(seq, mask, model.module_.items.vectors, TEXT_DECAY) @ model.module_.pointer.unit.T
    np.testing.assert_allclose(cos.numpy(), model._text_term(hist), rtol=1e-4, atol=1e-5)
