"""The newer peers: BSARec (Fourier filter, prefix training) and the text-aware SASRec / UniSRec baselines."""

import numpy as np
import pytest
import torch

from arborec.baselines import BSARec, MostPop, SASRec, SASRecPrefix, SASRecText, UniSRec, UniSRecText
from arborec.baselines._text_items import TextItemEmbedding, has_item_text
from arborec.baselines.bsarec import BSARecConfig, BSARecModule, low_pass_matrix
from arborec.baselines.sasrec import SASRecConfig
from arborec.baselines.sasrec_text import TextSASRecModule
from arborec.baselines.unisrec import CosineSASRecModule
from arborec.data import Histories, leave_one_out, make_synthetic, prepare
from arborec.diagnostics import ConfigError, NotFittedError
from arborec.evaluate import evaluate
from arborec.recommenders import MODELS
from arborec.sequential import prefix_windows
from arborec.suite import tune_model
from arborec.text.recommender import FineTunedText, TextOnly

N_ITEMS, D, TEXT_DIM = 30, 16, 12
PEERS = {"bsarec": BSARec, "sasrec-text": SASRecText, "unisrec": UniSRec, "unisrec-t": UniSRecText}
SMALL = dict(hidden_size=32, max_len=20, batch_size=64, lr=3e-3, dropout=0.2)  # quick on the synthetic data


def _text_module(kind, id_mask=None):
    torch.manual_seed(0)
    vectors = np.random.default_rng(0).normal(size=(N_ITEMS, TEXT_DIM)).astype(np.float32)
    cfg = SASRecConfig(n_items=N_ITEMS, max_len=8, hidden_size=D, n_layers=2, n_heads=2)
    id_mask = np.ones(N_ITEMS, bool) if id_mask is None else id_mask
    if kind == "sasrec-text":
        return TextSASRecModule(cfg, TextItemEmbedding(N_ITEMS, D, vectors, id_mask, "linear")).eval()
    return CosineSASRecModule(cfg, TextItemEmbedding(N_ITEMS, D, vectors, id_mask if kind == "unisrec" else None,
                                                     "moe", n_experts=3), 0.07).eval()


def _module(name):
    if name == "bsarec":
        torch.manual_seed(0)
        return BSARecModule(BSARecConfig(n_items=N_ITEMS, max_len=8, hidden_size=D, n_heads=2, dropout=0.2)).eval()
    return _text_module(name)


def _seqs(rng, lengths, max_len):
    out = np.zeros((len(lengths), max_len), dtype=np.int64)
    for b, n in enumerate(lengths):
        out[b, max_len - n:] = rng.integers(1, N_ITEMS + 1, size=n)
    return torch.from_numpy(out)


def _described_vectors(data, split, seed=0):
    """Item "text" vectors that describe each synthetic item: its leaf and its rank inside the leaf, plus noise."""
    cat = data.catalog
    leaves = sorted({p[-1] for p in cat["category_path"]})
    rank = cat["title"].str.extract(r"No\. (\d+)")[0].astype(int).to_numpy() - 1
    vec = np.zeros((split.n_items, len(leaves) + rank.max() + 1), np.float32)
    vec[np.arange(split.n_items), [leaves.index(p[-1]) for p in cat["category_path"]]] = 1.0
    vec[np.arange(split.n_items), len(leaves) + rank] = 1.0
    vec += 0.05 * np.random.default_rng(seed).normal(size=vec.shape).astype(np.float32)
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def no_text():
    """(prepared data, split) of the synthetic data with every text field emptied (category paths kept)."""
    dataset = make_synthetic(n_users=150, seed=1)
    dataset.catalog["title"] = ""
    dataset.catalog["brand"] = ""
    data = prepare(dataset)
    return data, leave_one_out(data)


# -- BSARec: the filter, and why it trains on prefixes --------------------------------------------

def test_low_pass_matrix_is_the_fft_filter_of_the_zero_padded_sequence():
    x = torch.randn(3, 7, 4)  # (B, W, D), W < max_len
    padded = torch.cat([torch.zeros(3, 13, 4), x], dim=1)  # left-padded to max_len 20
    spectrum = torch.fft.rfft(padded, dim=1, norm="ortho")
    spectrum[:, 5 // 2 + 1:] = 0  # c = 5 keeps 3 bins
    expected = torch.fft.irfft(spectrum, n=20, dim=1, norm="ortho")[:, -7:]
    ours = torch.einsum("ts,bsd->btd", low_pass_matrix(20, 5)[-7:, -7:], x)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours, x, atol=1e-2)  # it does filter


def test_bsarec_positions_see_the_future_so_training_uses_prefixes():
    module = _module("bsarec")
    seq = _seqs(np.random.default_rng(1), [8, 6], 8)
    changed = seq.clone()
    changed[:, 6] = changed[:, 6] % N_ITEMS + 1  # a later item
    with torch.no_grad():
        a, b = module(seq), module(changed)
    assert not torch.allclose(a[:, :6], b[:, :6])  # the filter is not causal: earlier positions move
    module.blocks[0].alpha = module.blocks[1].alpha = 0.0  # attention alone is causal
    with torch.no_grad():
        torch.testing.assert_close(module(seq)[:, :6], module(changed)[:, :6])


def test_prefix_windows_hold_only_the_items_before_each_target():
    rng = np.random.default_rng(0)
    lengths = np.array([1, 2, 5, 9, 14])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    items = rng.integers(0, 50, size=indptr[-1]).astype(np.int32)
    max_len = 4
    for earlier in (False, True):
        inputs, targets = prefix_windows(indptr, items, max_len, earlier)
        assert (targets[:, :-1] == 0).all()  # the loss reads the last position only
        expected = []
        for u, n in enumerate(lengths):
            seq = items[indptr[u]:indptr[u + 1]]
            first = 1 if earlier else max(1, n - max_len)
            expected += [(seq[max(0, p - max_len):p], seq[p]) for p in range(first, n)]
        assert len(inputs) == len(expected)
        for row, tgt, (before, target) in zip(inputs, targets, expected):
            assert row[row > 0].tolist() == (before + 1).tolist() and tgt[-1] == target + 1


def test_bsarec_fits_on_prefix_pairs_and_validates_its_parameters(synthetic):
    _, split = synthetic
    inputs, targets = BSARec(**SMALL)._training_pairs(split)
    n_train = np.diff(split.train_indptr)
    assert (targets[:, :-1] == 0).all()
    assert len(inputs) == np.minimum(np.maximum(n_train - 1, 0), SMALL["max_len"]).sum()  # one pair per target
    for bad in (dict(alpha=1.5), dict(c=0), dict(c=60)):
        with pytest.raises(ConfigError):
            BSARec(**{**SMALL, **bad}, max_epochs=1).fit(split)


def test_sasrec_prefix_is_sasrec_trained_on_one_prefix_per_target(synthetic):
    _, split = synthetic
    every, prefix = SASRec(**SMALL), SASRecPrefix(**SMALL)
    inputs, targets = prefix._training_pairs(split)
    expected = BSARec(**SMALL)._training_pairs(split)  # BSARec's regime, the same pairs
    np.testing.assert_array_equal(inputs, expected[0])
    np.testing.assert_array_equal(targets, expected[1])
    assert (targets[:, :-1] == 0).all() and len(inputs) > len(every._training_pairs(split)[0])
    torch.set_num_threads(1)
    model = SASRecPrefix(**SMALL, max_epochs=2, seed=0).fit(split)
    assert type(model.module_) is type(every._build_module(split.n_items))  # the same network as SASRec
    assert np.isfinite(model.best_valid_ndcg_) and model.name == "sasrec-prefix"


# -- the networks: shapes and padding -------------------------------------------------------------

@pytest.mark.parametrize("name", PEERS)
def test_module_output_shape(name):
    seq = _seqs(np.random.default_rng(0), [8, 3, 0, 1], 8)
    assert _module(name)(seq).shape == (4, 8, D)


@pytest.mark.parametrize("name", PEERS)
def test_left_padding_does_not_change_the_last_position(name):
    module = _module(name)
    seq = _seqs(np.random.default_rng(2), [5], 5)
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.int64), seq], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(module(seq)[:, -1], module(padded)[:, -1])


@pytest.mark.parametrize("name", ["sasrec-text", "unisrec"])
def test_text_models_are_causal(name):
    module = _module(name)
    seq = _seqs(np.random.default_rng(1), [8, 6], 8)
    changed = seq.clone()
    changed[:, 5] = changed[:, 5] % N_ITEMS + 1
    with torch.no_grad():
        torch.testing.assert_close(module(seq)[:, :5], module(changed)[:, :5])


# -- the item representation ------------------------------------------------------------------

@pytest.mark.parametrize("adaptor", ["linear", "moe"])
def test_items_without_training_events_are_their_text_alone(adaptor):
    vectors = np.random.default_rng(0).normal(size=(N_ITEMS, TEXT_DIM)).astype(np.float32)
    id_mask = np.ones(N_ITEMS, bool)
    id_mask[[3, 7]] = False  # no training events
    torch.manual_seed(0)
    items = TextItemEmbedding(N_ITEMS, D, vectors, id_mask, adaptor, n_experts=2).eval()
    text_only = TextItemEmbedding(N_ITEMS, D, vectors, None, adaptor, n_experts=2).eval()
    text_only.adaptor.load_state_dict(items.adaptor.state_dict())
    with torch.no_grad():
        table, text = items.weight, text_only.weight  # (N_ITEMS + 1, D)
        torch.testing.assert_close(table[[4, 8]], text[[4, 8]])  # cold items: text part only
        assert not torch.allclose(table[[1, 2]], text[[1, 2]])  # warm items: ID part added
        assert table[0].abs().max() == 0 and text[0].abs().max() == 0  # padding
        items.id_emb.weight[[4, 8]] += 1.0  # the cold items' ID rows are never read
        torch.testing.assert_close(items.weight[[4, 8]], text[[4, 8]])
        torch.testing.assert_close(items(torch.tensor([[0, 4, 2]])), items.weight[[0, 4, 2]].unsqueeze(0))


def test_cold_item_scores_follow_its_text(synthetic):
    data, split = synthetic
    counts = split.item_train_counts()
    vectors = _described_vectors(data, split)
    model = SASRecText(**SMALL, max_epochs=1, seed=0).fit(split, data, vectors=vectors)
    assert model.uses_text_ and model.vectors_.shape == vectors.shape
    cold = int(np.argmin(counts))
    users = split.eval_users("valid")
    hist = split.histories("valid", users)
    users = np.array([u for b, u in enumerate(users) if cold not in hist.items[hist.indptr[b]:hist.indptr[b + 1]]][:5])
    hist = split.histories("valid", users)
    table = model.module_.item_emb
    with torch.no_grad():
        table.id_mask[cold + 1] = 0.0  # make one item cold after the fact: only its text remains
        before = model.score(users, hist)
        table.vectors[cold + 1] = table.vectors[cold + 2]  # give it another item's text
        after = model.score(users, hist)
    assert not np.allclose(before[:, cold], after[:, cold])
    np.testing.assert_allclose(np.delete(before, cold, 1), np.delete(after, cold, 1), rtol=1e-5, atol=1e-5)


def test_given_vectors_must_have_one_row_per_item(synthetic):
    data, split = synthetic
    with pytest.raises(ConfigError, match="one row per item"):
        SASRecText(**SMALL, max_epochs=1).fit(split, data, vectors=np.zeros((3, 8), np.float32))
    with pytest.raises(ConfigError, match="item vectors"):
        UniSRec(**SMALL, max_epochs=1).fit(split)


# -- learning -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PEERS)
def test_learns_the_planted_sequences_better_than_most_popular(name, synthetic):
    data, split = synthetic
    torch.set_num_threads(1)
    model = PEERS[name](**SMALL, max_epochs=8, eval_every=4, seed=0)
    model.fit(split, data, vectors=_described_vectors(data, split)) if name != "bsarec" else model.fit(split)
    ndcg = evaluate(model, split, "valid").metrics["ndcg@10"]
    pop = evaluate(MostPop().fit(split), split, "valid").metrics["ndcg@10"]
    assert ndcg > pop + 0.35, (ndcg, pop)  # about 0.56 against 0.02 when it learns the walks
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]


@pytest.mark.parametrize("name", ["bsarec", "unisrec"])
def test_same_seed_same_model(name, synthetic):
    data, split = synthetic
    users = split.eval_users("valid")[:20]
    hist = split.histories("valid", users)
    kw = {} if name == "bsarec" else {"vectors": _described_vectors(data, split)}
    a = PEERS[name](**SMALL, max_epochs=1, seed=3).fit(split, data, **kw).score(users, hist)
    b = PEERS[name](**SMALL, max_epochs=1, seed=3).fit(split, data, **kw).score(users, hist)
    c = PEERS[name](**SMALL, max_epochs=1, seed=4).fit(split, data, **kw).score(users, hist)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# -- catalogues without text --------------------------------------------------------------------

def test_has_item_text(synthetic, no_text):
    assert has_item_text(synthetic[0].catalog)
    assert not has_item_text(no_text[0].catalog)  # category paths alone are not text


@pytest.mark.parametrize("name", ["sasrec-text", "unisrec"])
def test_without_item_text_the_text_models_fall_back_to_ids(name, no_text, monkeypatch):
    import arborec.text

    data, split = no_text
    monkeypatch.setattr(arborec.text, "encode_items", lambda *a, **k: pytest.fail("no text: nothing to encode"))
    model = PEERS[name](**SMALL, max_epochs=1).fit(split, data)
    assert not model.uses_text_ and model.vectors_ is None and model.module_.item_emb.adaptor is None
    users = split.eval_users("test")[:10]
    scores = model.score(users, split.histories("test", users))
    assert scores.shape == (10, split.n_items) and np.isfinite(scores).all()


@pytest.mark.parametrize("make", [lambda: UniSRecText(**SMALL, max_epochs=1), FineTunedText, TextOnly],
                         ids=["unisrec-t", "text-ft", "text"])
def test_text_only_models_refuse_a_catalogue_without_text(make, no_text, monkeypatch):
    import arborec.text.recommender
    data, split = no_text
    for module in (arborec.text, arborec.text.recommender):
        monkeypatch.setattr(module, "encode_items", lambda *a, **k: pytest.fail("no text: nothing to encode"))
    model = make()
    with pytest.raises(ConfigError, match=f"{model.name} reads items only through their text.*no item text"):
        model.fit(split, data)


def test_tuning_a_model_that_refuses_the_data_says_why_every_trial_failed(no_text, tmp_path):
    data, split = no_text
    with pytest.raises(RuntimeError, match=r"tuning text-ft: no trial finished \(3 failed or pruned\): "
                                           r"ConfigError: text-ft reads items only through their text"):
        tune_model("text-ft", {"decay": [0.5, 0.7, 0.9]}, {}, split, data, tmp_path / "studies.log", budget=3)


# -- the contract ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PEERS)
def test_registered_params_round_trip_and_validation(name, synthetic):
    assert MODELS[name] is PEERS[name]
    model = PEERS[name]()
    params = model.get_params()
    assert type(model)(**params).get_params() == params
    assert model.search_space and set(model.search_space) <= set(params)
    with pytest.raises(ConfigError):
        PEERS[name](dropout=1.0).fit(synthetic[1], synthetic[0])
    with pytest.raises(NotFittedError):
        model.score(np.array([0]), Histories(np.array([0, 1]), np.array([0], np.int32)))


def test_bsarec_last_position_shortcut_equals_the_full_forward():
    module = _module("bsarec")
    seq = _seqs(np.random.default_rng(3), [8, 5, 1], 8)
    with torch.no_grad():
        torch.testing.assert_close(module(seq, last_only=True)[:, 0], module(seq)[:, -1])
