"""The arborec model: causality, per-event state, cold items, level heads, learning, bundles, CLI."""

import json

import numpy as np
import pytest
import torch

from arborec.baselines import MostPop
from arborec.data import Histories
from arborec.evaluate import evaluate
from arborec.model import ArboRec, default_tree, load_bundle, save_bundle
from arborec.model._text_score import POINTER_TEMPERATURE, POINTER_WEIGHTS, TEXT_WEIGHTS

TINY = dict(hidden_size=16, n_layers=1, max_len=12, batch_size=64, eval_every=1, patience=2, seed=0)


def _vectors(split, dim=16, seed=0):
    return np.random.default_rng(seed).normal(size=(split.n_items, dim)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(synthetic):
    data, split = synthetic
    torch.set_num_threads(1)
    model = ArboRec(max_epochs=20, **TINY).fit(split, data, vectors=_vectors(split))
    return data, split, model


def test_tree_from_categories(synthetic):
    data, split = synthetic
    tree = default_tree(data, _vectors(split), source="categories")
    assert tree.n_items == split.n_items and tree.n_levels >= 2
    # items sharing a leaf share every ancestor
    leaf = tree.codes[:, -1]
    for node in np.unique(leaf)[:5]:
        assert len(np.unique(tree.codes[leaf == node, 0])) == 1


def test_no_position_sees_the_future(fitted):
    _, split, model = fitted
    m = model.module_.eval()
    seq = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5], [1, 4, 6, 8, 10, 12, 14, 16]])
    user, long, short, table = m(seq)
    assert user.shape == long.shape == short.shape == (2, 8, 16)
    assert table.shape == (split.n_items + 1, 16)
    changed = seq.clone()
    changed[:, 5:] = torch.tensor([20, 21, 22])
    user2, long2, short2, _ = m(changed)
    for a, b in ((user, user2), (long, long2), (short, short2)):
        torch.testing.assert_close(a[:, :5], b[:, :5])  # positions before the change are untouched
        assert not torch.allclose(a[:, 5:], b[:, 5:])
    # left padding is invisible: the same history with more padding gives the same last state
    wider = torch.cat([torch.zeros(2, 4, dtype=seq.dtype), seq], 1)
    torch.testing.assert_close(m(wider)[0][0, -1], user[0, -1], atol=1e-5, rtol=1e-4)


def test_advancing_event_by_event_equals_the_full_sequence(fitted, monkeypatch):
    _, split, model = fitted
    monkeypatch.setattr(model, "text_weight_", 1.0)  # every score term on, whatever validation chose
    monkeypatch.setattr(model, "pointer_weight_", 0.2)
    monkeypatch.setattr(model, "pointer_temperature_", 0.05)
    lengths = split.histories("test", split.eval_users("test")).lengths()
    users = split.eval_users("test")[np.argsort(-lengths, kind="stable")[[0, 1, -2, -1]]]  # windows full and not
    assert lengths.max() > model.max_len
    hist = split.histories("test", users)
    full = model.score(users, hist)
    assert set(model.score_weight_scores_) == {f"text {t}" for t in TEXT_WEIGHTS}  # every candidate measured
    for b in range(len(users)):
        seq = hist.sequence(b).tolist()
        state = model.init_state()
        for item in seq:
            state = model.advance(state, [item])
        assert state["window"] == seq[-model.max_len:] and state["n_events"] == len(seq)
        np.testing.assert_allclose(model.score_state(state), full[b], rtol=1e-4, atol=1e-4)
        batch = model.advance(model.init_state(), seq)  # all at once: the same hidden state
        np.testing.assert_allclose(batch["gru"], state["gru"], rtol=1e-5, atol=1e-5)
        # the hidden state is the GRU's over the whole sequence
        m = model.module_
        x = m.gru_inputs(torch.tensor([[i + 1 for i in seq]]), model._table())
        _, h = m.gru(x)
        np.testing.assert_allclose(np.asarray(state["gru"]), h[:, 0].detach().numpy(), rtol=1e-4, atol=1e-5)


def test_text_pointer_mixes_the_model_with_a_text_distribution_over_new_items(fitted, monkeypatch):
    data, split, model = fitted
    assert model.pointer_weight_ in POINTER_WEIGHTS and model.pointer_temperature_ == POINTER_TEMPERATURE
    assert set(model.pointer_scores_) == {f"pointer {w}, temperature {POINTER_TEMPERATURE}" for w in POINTER_WEIGHTS}
    users = split.eval_users("test")[:6]
    hist = split.histories("test", users)
    monkeypatch.setattr(model, "text_weight_", 1.0)
    monkeypatch.setattr(model, "pointer_weight_", 0.0)
    base = np.exp(model.score(users, hist).astype(np.float64))
    pointer = np.exp(model._text_term(hist) / 0.05)
    outside = np.ones_like(base, dtype=bool)  # both distributions are over the items outside the window
    for b in range(len(users)):
        outside[b, hist.sequence(b)[-model.max_len:]] = False
    base, pointer = base * outside, pointer * outside
    expected = 0.75 * base / base.sum(1, keepdims=True) + 0.25 * pointer / pointer.sum(1, keepdims=True)
    monkeypatch.setattr(model, "pointer_weight_", 0.25)
    monkeypatch.setattr(model, "pointer_temperature_", 0.05)
    scores = model.score(users, hist)
    np.testing.assert_allclose(np.exp(scores.astype(np.float64)) * outside, expected, rtol=1e-3, atol=1e-7)
    assert np.isfinite(scores).all()  # window items: ranked last, but finite
    np.testing.assert_allclose(scores.min(1), np.where(outside, scores, np.inf).min(1))
    with pytest.raises(Exception, match="pointer_weight"):
        ArboRec(pointer_weight=1.0, **TINY).fit(split, data, vectors=_vectors(split))


def test_cold_item_gets_a_finite_score_from_text_and_tree(synthetic):
    data, split = synthetic
    counts = split.item_train_counts()
    cold = int(np.argmin(counts))
    # make one item unseen in training: drop it from every training history
    keep = split.train_items != cold
    lens = np.add.reduceat(keep.astype(np.int64), split.train_indptr[:-1]) * (np.diff(split.train_indptr) > 0)
    indptr = np.concatenate([[0], np.cumsum(lens)])
    import dataclasses

    split2 = dataclasses.replace(split, train_indptr=indptr, train_items=split.train_items[keep],
                                 train_times=split.train_times[keep])
    model = ArboRec(max_epochs=1, **TINY).fit(split2, data, vectors=_vectors(split))
    assert split2.item_train_counts()[cold] == 0
    users = split.eval_users("test")[:8]
    scores = model.score(users, split2.histories("test", users))
    assert np.isfinite(scores[:, cold]).all()
    # its ID embedding plays no part: changing it leaves the scores unchanged
    with torch.no_grad():
        model.module_.items.id_emb.weight[cold + 1] += 5.0
    np.testing.assert_allclose(model.score(users, split2.histories("test", users))[:, cold], scores[:, cold],
                               rtol=1e-5, atol=1e-5)


def test_learns_the_planted_structure(fitted):
    _, split, model = fitted
    ndcg = evaluate(model, split, "test").metrics["ndcg@10"]
    random_ndcg = 1.0 / split.n_items * 10 * 0.4  # ~ expected NDCG@10 of a random ranking
    assert ndcg > 10 * random_ndcg, ndcg
    # training learns: the kept weights validate well above the first epoch's (0.02 -> 0.29 here), and
    # the planted sequences beat popularity, which cannot see them
    first = model.history_[0]["valid_ndcg@10"]
    assert model.best_valid_ndcg_ > 1.5 * first, (first, model.best_valid_ndcg_)
    mostpop = evaluate(MostPop().fit(split), split, "test").metrics["ndcg@10"]
    assert ndcg > 3 * mostpop, (ndcg, mostpop)


def test_level_distributions_are_consistent_profiles(fitted):
    _, split, model = fitted
    users = split.eval_users("test")[:5]
    hist = split.histories("test", users)
    long, short = model.level_distributions(hist)
    tree = model.tree_
    assert [p.shape for p in long] == [(5, n) for n in tree.level_sizes] == [p.shape for p in short]
    for dists in (long, short):
        for level, p in enumerate(dists):
            np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-4)
            if level:  # a node's probability is the sum of its children's
                parent_mass = np.zeros_like(dists[level - 1])
                np.add.at(parent_mass.T, tree.parents[level], p.T)
                np.testing.assert_allclose(parent_mass, dists[level - 1], rtol=1e-4, atol=1e-6)
    assert not np.allclose(long[0], short[0])  # two streams, two views
    state = model.advance(model.init_state(), hist.sequence(0).tolist())
    l_state, s_state = model.level_distributions_state(state)
    np.testing.assert_allclose(l_state[-1], long[-1][0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(s_state[-1], short[-1][0], rtol=1e-4, atol=1e-6)


def test_the_level_heads_learn_the_tree_without_shaping_the_ranking(fitted):
    """The heads' loss reaches the heads only: every other weight gets the gradient of the next-item loss alone."""
    _, split, model = fitted
    m = model.module_.train()
    seq = torch.tensor([[0, 0, 3, 7, 9, 11], [1, 4, 6, 8, 10, 12]])
    tgt = torch.tensor([[0, 0, 7, 9, 11, 2], [4, 6, 8, 10, 12, 14]])
    grads = []
    for heads in (m.heads, None):
        torch.manual_seed(0)  # the same dropout masks
        m.zero_grad()
        saved, m.heads = m.heads, heads
        try:
            model._loss(seq, tgt)[0].backward()
        finally:
            m.heads = saved
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    with_heads, without = grads
    assert any(n.startswith("heads.") for n in with_heads) and not any(n.startswith("heads.") for n in without)
    for name, g in without.items():
        torch.testing.assert_close(with_heads[name], g)
    m.eval()
    # and they learned the tree: the next event's level-1 node is predicted far above chance
    users = split.eval_users("test")
    long, short = model.level_distributions(split.histories("test", users))
    node = model.tree_.codes[split.targets("test", users), 0]
    hit = (np.argmax(long[0], axis=1) == node).mean()
    assert hit > 2.0 / model.tree_.level_sizes[0], hit


def test_ablation_switches_and_sampled_softmax(synthetic):
    data, split = synthetic
    for flags in ({"use_long": False}, {"use_short": False}, {"use_heads": False, "use_text": False},
                  {"sampled_above": 10, "n_negatives": 32}):
        model = ArboRec(max_epochs=1, **TINY, **flags).fit(split, data, vectors=_vectors(split))
        users = split.eval_users("test")[:3]
        assert np.isfinite(model.score(users, split.histories("test", users))).all()
    with pytest.raises(Exception, match="use_long"):
        ArboRec(use_long=False, use_short=False, **TINY).fit(split, data, vectors=_vectors(split))


def test_sampled_training_fuses_only_the_rows_a_step_touches(fitted):
    """Above ``sampled_above`` a step fuses only its inputs', targets' and negatives' rows; the loss is the
    sampled softmax over the full table's rows, to float precision."""
    _, split, model = fitted
    m = model.module_.eval()  # no dropout: both paths are deterministic
    seq = torch.tensor([[0, 0, 3, 7, 9, 11], [1, 4, 6, 8, 10, 12]])
    tgt = torch.tensor([[0, 0, 7, 9, 11, 2], [4, 6, 8, 10, 12, 14]])
    heads, m.heads = m.heads, None  # the next-item loss alone
    sampled = ArboRec(**{**model.get_params(), "sampled_above": 10, "n_negatives": 16})
    sampled.module_, sampled.n_items_, sampled.item_counts_, sampled._q = m, model.n_items_, split.item_train_counts(), None
    fused_rows = []
    real = m.items.forward
    m.items.forward = lambda rows=None: fused_rows.append(None if rows is None else len(rows)) or real(rows)
    try:
        torch.manual_seed(3)
        loss, n = sampled._loss(seq, tgt)
    finally:
        del m.items.forward
        m.heads = heads
    assert fused_rows and None not in fused_rows and max(fused_rows) < model.n_items_  # never the whole table
    torch.manual_seed(3)
    neg = sampled._draw_negatives(seq.device)
    user, _, _, table = m(seq)
    mask = tgt > 0
    expected = sampled._sampled_softmax(user[mask], table[1:], tgt[mask] - 1, neg=neg)
    assert n == int(mask.sum())
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("use_tree", [False, True])
def test_the_item_gate_mixes_the_parts_as_a_softmax_weighted_sum(use_tree):
    """The fused table is ``P * sum_p w_p part_p``, ``w = softmax(W [parts] + b)`` per item with weights in [0, 1]
    summing to 1, and an unseen item's ID part weighted 0 (computed block by block and by lerp, for speed)."""
    from arborec.model._network import ArboRecConfig, ItemEncoder

    torch.manual_seed(0)
    cfg = ArboRecConfig(n_items=300, level_sizes=[3, 7], text_dim=24, hidden_size=8, use_tree=use_tree)
    seen = torch.rand(300) > 0.2
    enc = ItemEncoder(cfg, torch.randn(300, 24), torch.stack([torch.randint(0, 3, (300,)), torch.randint(0, 7, (300,))], 1), seen)
    torch.nn.init.normal_(enc.gate.weight)  # a gate far from uniform
    parts = [enc.id_emb.weight[1:] * seen[:, None], enc.text_proj(enc.vectors)]
    if use_tree:
        parts.append(enc.node_emb[0](enc.codes[:, 0]) + enc.node_emb[1](enc.codes[:, 1]))
    logits = enc.gate(torch.cat(parts, 1)).masked_fill(~seen[:, None] & (torch.arange(len(parts)) == 0), float("-inf"))
    w = torch.softmax(logits, 1)
    assert bool((w >= 0).all() and (w <= 1).all()) and torch.allclose(w.sum(1), torch.ones(300))
    assert bool((w[~seen, 0] == 0).all()) and bool((w[seen, 0] > 0).all())
    table = enc()
    assert bool((table[0] == 0).all())  # the padding row
    torch.testing.assert_close(table[1:], len(parts) * sum(w[:, p, None] * x for p, x in enumerate(parts)))
    torch.testing.assert_close(enc(torch.tensor([4, 0, 299])), table[[5, 1, 300]])  # rows alone, the same


def test_the_level_heads_training_loss_reads_sibling_groups_and_equals_the_full_distributions():
    """``LevelHeads.nll`` (the training loss: each row's own sibling group) gives the values and gradients of
    ``F.nll_loss`` on the full per-level distributions of ``forward`` (what profiles read)."""
    import torch.nn.functional as F

    from arborec.model._network import LevelHeads

    torch.manual_seed(0)
    sizes = [4, 11, 40]
    parents = [torch.zeros(4, dtype=torch.long), torch.randint(0, 4, (11,)), torch.randint(0, 11, (40,))]
    parents[1][:4] = torch.arange(4)  # every node has a child, except (maybe) some of level 2's
    heads = LevelHeads(8, sizes, parents)
    leaf = torch.randint(0, 40, (64,))
    codes = torch.stack([parents[1][parents[2][leaf]], parents[2][leaf], leaf], 1)  # items' paths, coarse to fine
    h = torch.randn(64, 8, requires_grad=True)
    fast = heads.nll(h, codes)
    g_fast = torch.autograd.grad(sum(fast), [h, *heads.parameters()])
    full = [F.nll_loss(logp, codes[:, level]) for level, logp in enumerate(heads(h))]
    g_full = torch.autograd.grad(sum(full), [h, *heads.parameters()])
    torch.testing.assert_close(torch.stack(fast), torch.stack(full))
    for a, b in zip(g_fast, g_full):
        torch.testing.assert_close(a, b)


def test_a_stopped_fit_resumes_to_the_same_model(synthetic, tmp_path):
    """ArboRec's fit around the shared loop (defaults, tree, text weight and pointer after it) resumes exactly."""
    data, split = synthetic
    params = dict(TINY, max_epochs=4, eval_every=2, patience=5, sampled_above=10, n_negatives=32)
    whole = ArboRec(**params).fit(split, data, vectors=_vectors(split))

    class Stop(Exception):
        pass

    def stop_at_4(epoch, ndcg):
        if epoch == 4:
            raise Stop
    stopped = ArboRec(**params)
    stopped.resume_path, stopped.on_validation = tmp_path / "state.pt", stop_at_4
    with pytest.raises(Stop):
        stopped.fit(split, data, vectors=_vectors(split))
    resumed = ArboRec(**params)
    resumed.resume_path = tmp_path / "state.pt"
    resumed.fit(split, data, vectors=_vectors(split))
    assert resumed.resumed_epochs_ == 2
    users = split.eval_users("test")[:50]
    np.testing.assert_array_equal(resumed.score(users, split.histories("test", users)),
                                  whole.score(users, split.histories("test", users)))
    assert (resumed.text_weight_, resumed.pointer_weight_) == (whole.text_weight_, whole.pointer_weight_)


def test_fits_on_memory_mapped_vectors_without_copying_them(synthetic, tmp_path):
    """Vectors from ``encode_items(out=...)`` (a read-only memory map) train the same model, shared, not copied."""
    data, split = synthetic
    np.save(tmp_path / "v.npy", _vectors(split))
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    params = dict(max_epochs=1, text_weight=1.0, **TINY)
    on_map = ArboRec(**params).fit(split, data, vectors=mapped)
    in_memory = ArboRec(**params).fit(split, data, vectors=_vectors(split))
    assert np.shares_memory(on_map.vectors_, mapped)  # no private copy of the catalogue's vectors
    hist = split.histories("test", np.arange(20))
    np.testing.assert_allclose(on_map.score(np.arange(20), hist), in_memory.score(np.arange(20), hist), atol=1e-6)


def test_bundle_round_trip(fitted, tmp_path, monkeypatch):
    data, split, model = fitted
    monkeypatch.setattr(model, "pointer_weight_", 0.1)  # every score term on, whatever validation chose
    monkeypatch.setattr(model, "pointer_temperature_", 0.03)
    hist = Histories(split.train_indptr, split.train_items)
    path = save_bundle(model, tmp_path / "b", item_ids=data.catalog["item"], user_ids=data.user_ids, histories=hist)
    assert {"model.safetensors", "config.json", "items.json", "tree.npz", "vectors.npy"} <= {p.name for p in path.iterdir()}
    loaded = load_bundle(path)
    users = split.eval_users("test")[:6]
    np.testing.assert_allclose(loaded.score(users, split.histories("test", users)),
                               model.score(users, split.histories("test", users)), rtol=1e-5, atol=1e-5)
    assert loaded.item_ids_[0] == str(data.catalog["item"].iloc[0])
    np.testing.assert_array_equal(loaded.user_histories_.items, split.train_items)
    config = json.loads((path / "config.json").read_text())  # a bundle written before logit_adjust was removed
    config["params"]["logit_adjust"] = 0.0
    (path / "config.json").write_text(json.dumps(config))
    np.testing.assert_allclose(load_bundle(path).score(users, split.histories("test", users)),
                               model.score(users, split.histories("test", users)), rtol=1e-5, atol=1e-5)


def test_cli_fit_continues_a_stopped_fit_and_leaves_no_state_behind(tmp_path, capsys, monkeypatch):
    from arborec.cli import main

    bundle = tmp_path / "bundle"
    args = ["-q", "fit", "--data", "synthetic", "--no-cache", "--output", str(bundle),
            *[f"--param={k}={v}" for k, v in {**TINY, "max_epochs": 3}.items()]]

    def stop(epoch, ndcg):
        if epoch == 2:
            raise KeyboardInterrupt  # a stop after epoch 2's validation: its state (epoch 1's) is on disk
    monkeypatch.setattr(ArboRec, "on_validation", staticmethod(stop))
    with pytest.raises(KeyboardInterrupt):
        main(args)
    assert (bundle / "training-state.pt").exists() and not (bundle / "config.json").exists()
    monkeypatch.undo()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "continued a stopped fit after its epoch 1" in out and "bundle written" in out
    assert " of 3, " in out  # "best epoch b of 3": epoch 1 read back, epochs 2 and 3 trained
    assert not (bundle / "training-state.pt").exists() and load_bundle(bundle).n_items_ > 0


def test_cli_fit_evaluate_recommend(tmp_path, capsys):
    from arborec.cli import main

    bundle = tmp_path / "bundle"
    params = [f"--param={k}={v}" for k, v in {**TINY, "max_epochs": 2}.items()]
    assert main(["-q", "fit", "--data", "synthetic", "--no-cache", "--output", str(bundle), "--keep-histories",
                 *params]) == 0
    assert "bundle written" in capsys.readouterr().out
    out_json = tmp_path / "eval.json"
    assert main(["-q", "evaluate", "--data", "synthetic", "--no-cache", "--model", "arborec", "--bundle", str(bundle),
                 "--output", str(out_json)]) == 0
    assert "arborec" in capsys.readouterr().out and out_json.exists()
    user = load_bundle(bundle).user_ids_[0]
    assert main(["-q", "recommend", "--bundle", str(bundle), "--user", user, "-k", "3", "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.count("serves:") == 3 and "long" in out
