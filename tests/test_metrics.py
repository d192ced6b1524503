"""Metrics against hand-computed cases, and the evaluation protocol's masking and tie rules."""

import math

import numpy as np
import pytest

from arborec.data import Split
from arborec.evaluate import evaluate, rank_metrics, select_within_one_se, target_ranks, top_k


def test_target_ranks_counts_higher_scores_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]])
    # row 0: target 2 (0.5) has 0.9 above it -> rank 1; item 3 ties but has a higher index.
    # row 1: all tie; target 3 has three lower-index ties -> rank 3.
    assert target_ranks(scores, np.array([2, 3])).tolist() == [1, 3]


def test_non_finite_target_scores_rank_last():
    # NaN compares false both ways: without care, a NaN target would have nothing "above" it (rank 0, a hit)
    scores = np.array([[np.nan, np.nan, np.nan, np.nan],
                       [0.1, np.nan, 0.3, 0.2],
                       [0.1, np.inf, 0.3, 0.2],
                       [0.5, -np.inf, 0.3, np.nan]])
    ranks = target_ranks(scores, np.array([0, 1, 1, 2]))
    assert ranks.tolist() == [3, 3, 3, 1]  # NaN and inf targets last; a NaN elsewhere is not above 0.3
    assert rank_metrics(ranks[:3], ks=(1, 3))["recall@3"] == 0.0


def test_rank_metrics_hand_computed():
    ranks = np.array([0, 1, 4, 9, 30])
    m = rank_metrics(ranks, ks=(1, 5, 10))
    assert m["recall@1"] == pytest.approx(1 / 5)
    assert m["recall@5"] == pytest.approx(3 / 5)
    assert m["recall@10"] == pytest.approx(4 / 5)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(11)) / 5)
    assert m["mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 10) / 5)


def test_top_k_orders_best_first():
    scores = np.array([[0.2, 0.8, 0.5, 0.9, 0.1]])
    assert top_k(scores, 3).tolist() == [[3, 1, 2]]


def _tiny_split():
    # user 0: train [0, 1], valid 2, test 3 ; user 1: train [4], valid 0, test 1 ; 6 items
    return Split(n_users=2, n_items=6, train_indptr=np.array([0, 2, 3]), train_items=np.array([0, 1, 4], np.int32),
                 train_times=np.arange(3), valid_target=np.array([2, 0], np.int32),
                 test_target=np.array([3, 1], np.int32))


class Fixed:
    """Scores items by a fixed vector, records the histories it was shown."""

    def __init__(self, scores):
        self.scores = np.asarray(scores, dtype=np.float32)
        self.seen = []

    def score(self, users, histories):
        self.seen.append([histories.sequence(b).tolist() for b in range(len(histories))])
        return np.tile(self.scores, (len(users), 1))


def test_evaluate_excludes_history_and_feeds_validation_item_at_test():
    split = _tiny_split()
    # item scores: item 0 best... so for user 0 at test the history [0, 1, 2] is masked.
    model = Fixed([6, 5, 4, 3, 2, 1])
    ev = evaluate(model, split, "test")
    assert model.seen[-1] == [[0, 1, 2], [4, 0]]
    # user 0: items 0,1,2 masked -> target 3 is first. user 1: 4 and 0 masked -> target 1 is first.
    assert ev.ranks.tolist() == [0, 0]
    assert ev.metrics["ndcg@10"] == pytest.approx(1.0)
    ev = evaluate(model, split, "valid")
    assert model.seen[-1] == [[0, 1], [4]]
    # user 0: 0,1 masked -> target 2 first. user 1: only 4 masked -> target 0 first.
    assert ev.ranks.tolist() == [0, 0]


def test_evaluate_rejects_wrong_score_shape():
    class Bad:
        def score(self, users, histories):
            return np.zeros((len(users), 3))

    with pytest.raises(ValueError, match="expected"):
        evaluate(Bad(), _tiny_split(), "valid")


def test_coverage_and_slices():
    split = _tiny_split()
    ev = evaluate(Fixed([6, 5, 4, 3, 2, 1]), split, "test")
    assert 0 < ev.metrics["coverage@10"] <= 1
    cold = next(v for k, v in ev.slices.items() if k.startswith("cold"))
    # items 3 and 1: item 1 has 1 training event, item 3 none -> both cold
    assert cold["n_users"] == 2


def test_evaluate_chunks_users_by_catalogue_size(synthetic, monkeypatch):
    """Large catalogues are scored a few users at a time (never users x items at once), same results."""
    import arborec.evaluate._protocol as protocol
    from arborec.baselines import MostPop
    from arborec.evaluate import users_per_chunk

    assert users_per_chunk(1_000_000) == 33 and users_per_chunk(10_000) == 1024  # 128 MB of scores at most
    assert users_per_chunk(10**9) == 1 and users_per_chunk(1000, batch_size=7) == 7
    _, split = synthetic
    model = MostPop().fit(split)
    whole = evaluate(model, split, "test")
    rows = []
    score = model.score
    monkeypatch.setattr(model, "score", lambda u, h: rows.append(len(u)) or score(u, h))
    monkeypatch.setattr(protocol, "SCORE_CELLS", 20 * split.n_items)  # pretend the catalogue is huge
    chunked = evaluate(model, split, "test")
    assert max(rows) == 20 and sum(rows) == whole.n_users
    np.testing.assert_array_equal(chunked.ranks, whole.ranks)
    assert chunked.metrics == whole.metrics


def test_select_within_one_se_prefers_only_among_settings_validation_cannot_tell_apart():
    rng = np.random.default_rng(0)
    best = rng.random(400)  # mean ~0.5, standard error ~0.014
    se = best.std() / np.sqrt(len(best))
    scores = {"best": best, "near": best - 0.5 * se, "far": best - 3 * se}
    assert select_within_one_se(scores) == "best"
    prefer = {"best": 0.1, "near": 0.2, "far": 0.9}
    assert select_within_one_se(scores, prefer) == "near"  # "far" prefers more but is clearly worse
    assert select_within_one_se(scores, {"best": 0.2, "near": 0.2, "far": 0.9}) == "best"  # tie: better mean
