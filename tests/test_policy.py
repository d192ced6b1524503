"""The slate policy, its off-policy estimators and the simulator's agreement with them, on small hand-made data."""

import numpy as np
import pytest

from arborec.diagnostics import ConfigError, NotFittedError
from arborec.hierarchy import InterestTree
from arborec.policy import (ClickModel, GreedyPolicy, RandomTopNPolicy, SlatePolicy, intra_list_diversity,
                            off_policy_value, replay)


def small_tree(n_top=3, n_kids=2, per_kid=5) -> InterestTree:
    """n_top level-1 nodes, each with n_kids level-2 children of per_kid items; item i sits in child i // per_kid."""
    n_items = n_top * n_kids * per_kid
    kid = np.arange(n_items) // per_kid
    codes = np.stack([kid // n_kids, kid], axis=1)
    parents = [np.zeros(n_top, dtype=np.int64), np.arange(n_top * n_kids) // n_kids]
    labels = [[f"top{j}" for j in range(n_top)], [f"kid{c}" for c in range(n_top * n_kids)]]
    return InterestTree(codes=codes, parents=parents, labels=labels)


def dists(tree, q1):
    """(long, short) equal, with level-1 distribution q1 and level 2 uniform inside each parent."""
    q1 = np.asarray(q1, dtype=float)
    kids = tree.parents[1]
    q2 = q1[kids] / np.bincount(kids)[kids]
    return [q1, q2], [q1, q2]


def test_exploration_off_gives_the_greedy_allocation_by_hand():
    tree = small_tree(per_kid=10)
    long, short = dists(tree, [0.55, 0.3, 0.15])
    scores = -np.arange(tree.n_items, dtype=float)  # item 0 best; inside each node lower index = better
    policy = SlatePolicy(k=10, explore=False, floor=0.0, score_weight=0.0, spread=1.0).fit(tree)
    slate = policy.slate("u", long, short, scores)
    # D'Hondt on (0.55, 0.3, 0.15), 10 seats: 6 / 3 / 1 (worked out in the comment of the module test)
    assert np.bincount(slate.nodes, minlength=3).tolist() == [6, 3, 1]
    assert np.all(slate.propensities == 1.0) and np.all(slate.inclusion == 1.0)
    # inside node 0 (children 0 and 1, equal level-2 weight) the 6 slots split 3 / 3, best items of each child
    assert sorted(slate.items[slate.nodes == 0].tolist()) == [0, 1, 2, 10, 11, 12]
    assert np.all(np.diff(scores[slate.items]) <= 0)  # shown in score order
    again = policy.slate("u", long, short, scores)
    assert np.array_equal(again.items, slate.items)  # deterministic
    # spread 0 gives every slot to the strongest node: greedy by node
    top = SlatePolicy(k=10, explore=False, floor=0.0, score_weight=0.0, spread=0.0).fit(tree)
    assert np.all(top.slate("u", long, short, scores).nodes == 0)


def test_thompson_sampling_without_uncertainty_is_the_greedy_allocation():
    tree = small_tree(per_kid=10)
    long, short = dists(tree, [0.55, 0.3, 0.15])
    scores = np.random.default_rng(3).normal(size=tree.n_items)
    history = [4, 17]
    greedy = SlatePolicy(k=10, explore=False, floor=0.0, score_weight=0.0).fit(tree)
    sure = SlatePolicy(k=10, explore=True, floor=0.0, score_weight=0.0, prior_strength=1e7, n_draws=50).fit(tree)
    a = greedy.slate("u", long, short, scores, exclude=history)
    b = sure.slate("u", long, short, scores, exclude=history)
    assert a.items.tolist() == b.items.tolist() and np.allclose(b.propensities, 1.0)
    # with real uncertainty the draws differ: some propensities fall below one
    unsure = SlatePolicy(k=10, explore=True, floor=0.0, score_weight=0.0, prior_strength=2.0).fit(tree)
    assert unsure.slate("u", long, short, scores, exclude=history).propensities.min() < 1.0


def test_propensities_sum_and_match_the_served_frequencies():
    tree = small_tree()
    long, short = dists(tree, [0.5, 0.3, 0.2])
    scores = np.random.default_rng(0).normal(size=tree.n_items)
    policy = SlatePolicy(k=4, explore=True, prior_strength=3.0, n_draws=400, seed=1).fit(tree)
    table = policy.position_probabilities("u", long, short, scores, exclude=[0, 1])
    assert table.shape == (tree.n_items, 4)
    np.testing.assert_allclose(table.sum(0), 1.0)  # one item at every position
    np.testing.assert_allclose(table.sum(), 4.0)  # k items per slate in all
    assert np.all(table[[0, 1]] == 0)  # history never shown
    counts = np.zeros(tree.n_items)
    n = 400
    for _ in range(n):
        s = policy.slate("u", long, short, scores, exclude=[0, 1])
        assert np.all((s.propensities >= 1 / 400) & (s.propensities <= s.inclusion + 1e-12) & (s.inclusion <= 1))
        counts[s.items[0]] += 1
    # the frequency of each item at position 0 over served slates matches the Monte Carlo propensity
    np.testing.assert_allclose(counts / n, table[:, 0], atol=0.08)


def test_feedback_moves_the_allocation_the_right_way():
    tree = small_tree(per_kid=10)
    long, short = dists(tree, [0.55, 0.3, 0.15])
    scores = -np.arange(tree.n_items, dtype=float)
    policy = SlatePolicy(k=10, explore=False, floor=0.0, score_weight=0.0, prior_strength=10.0).fit(tree)
    before = policy.expected_allocation("u", long, short, scores)
    for _ in range(20):  # the user clicks everything under node 2 and nothing under node 0
        s = policy.slate("u", long, short, scores)
        policy.observe(s, (s.nodes == 2).astype(float))
    after = policy.expected_allocation("u", long, short, scores)
    assert after[2] > before[2] and after[0] < before[0]
    assert after.sum() == pytest.approx(10)
    # another user is not moved
    np.testing.assert_allclose(policy.expected_allocation("v", long, short, scores), before)
    policy.forget("u")
    np.testing.assert_allclose(policy.expected_allocation("u", long, short, scores), before)
    with pytest.raises(ConfigError, match="rewards must be in"):
        policy.update("u", [0], [2.0])
    with pytest.raises(NotFittedError):
        SlatePolicy().slate("u", long, short, scores)


def test_estimators_on_a_hand_computed_case():
    rewards = [[1, 0], [0, 1], [1, 1]]
    logging = [[0.5, 0.5], [0.25, 0.5], [0.5, 0.25]]
    target = [[1, 0], [0.5, 1], [0.5, 0.5]]
    # weights: [[2, 0], [2, 2], [1, 2]]; IPS terms 2, 2, 3
    est = off_policy_value(rewards, logging, target, reward_hat=np.full((3, 2), 0.5),
                           target_reward_hat=[0.6, 0.7, 0.8])
    assert est["ips"].value == pytest.approx(7 / 3)
    half = 1.959964 * np.sqrt(1 / 3) / np.sqrt(3)  # sd([2, 2, 3]) = sqrt(1/3)
    assert est["ips"].high - est["ips"].value == pytest.approx(half, rel=1e-5)
    # SNIPS per position: (2 + 0 + 1) / 5 = 0.6 and (0 + 2 + 2) / 4 = 1.0
    assert est["snips"].value == pytest.approx(1.6)
    # DR terms: 0.6 + 2 * 0.5 = 1.6; 0.7 - 2 * 0.5 + 2 * 0.5 = 0.7; 0.8 + 0.5 + 2 * 0.5 = 2.3
    assert est["dr"].value == pytest.approx(4.6 / 3)
    r = replay(rewards, [[1, 2], [3, 4], [1, 4]], [[1, 9], [3, 4], [5, 4]])
    assert r.value == pytest.approx(0.5 + 1.0) and r.n == 4
    with pytest.raises(ConfigError, match="logging_propensity must be > 0"):
        off_policy_value([[1.0]], [[0.0]], [[1.0]])


def test_off_policy_estimates_agree_with_the_simulated_value():
    """Log slates under uniform random-top-N, estimate a Thompson slate policy, compare with its simulated reward."""
    tree = small_tree()
    rng = np.random.default_rng(0)
    n_users, k, n_logged = 30, 3, 4000
    scores = rng.normal(size=(n_users, tree.n_items)) * 1.5
    taste = np.exp(scores + rng.normal(size=scores.shape) * 0.5)  # the truth: close to, not equal to, the scores
    taste /= taste.sum(1, keepdims=True)
    clicks = ClickModel.calibrated(taste, k, target_clicks=1.0)
    q1 = rng.dirichlet(np.ones(3), size=n_users)
    contexts = [dists(tree, q) for q in q1]
    target = SlatePolicy(k=k, explore=True, prior_strength=5.0, n_draws=2000, seed=2).fit(tree)
    logging = RandomTopNPolicy(k=k, n=tree.n_items, seed=3).fit(tree)
    pi = [target.position_probabilities(u, *contexts[u], scores[u]) for u in range(n_users)]  # (n_items, k) each

    # the target's value in the simulator: serve it (frozen) and count clicks; the same policy, one draw per
    # slate (the served draw does not depend on n_draws, only the propensities do)
    serving = SlatePolicy(k=k, explore=True, prior_strength=5.0, n_draws=1, seed=5).fit(tree)
    sim_rng = np.random.default_rng(4)
    served = []
    for t in range(n_logged):
        u = t % n_users
        s = serving.slate(u, *contexts[u], scores[u])
        served.append((sim_rng.random(len(s.items)) < clicks.probabilities(u, s.items)).sum())
    true_value = float(np.mean(served))

    users = np.arange(n_logged) % n_users
    logged_rewards = np.zeros((n_logged, k))
    mu = np.zeros((n_logged, k))
    pt = np.zeros((n_logged, k))
    items = np.zeros((n_logged, k), dtype=np.int64)
    for t, u in enumerate(users):
        s = logging.slate(u, *contexts[u], scores[u])
        items[t] = s.items
        logged_rewards[t] = rng.random(k) < clicks.probabilities(u, s.items)
        mu[t] = s.propensities
        pt[t] = pi[u][s.items, np.arange(k)]
    # a reward model: the logged click rate of each (item, position), pooled over users
    sums = np.zeros((tree.n_items, k))
    counts = np.zeros((tree.n_items, k))
    np.add.at(sums, (items, np.arange(k)[None, :].repeat(n_logged, 0)), logged_rewards)
    np.add.at(counts, (items, np.arange(k)[None, :].repeat(n_logged, 0)), 1)
    rhat = sums / np.maximum(counts, 1)
    est = off_policy_value(logged_rewards, mu, pt, reward_hat=rhat[items, np.arange(k)],
                           target_reward_hat=[(pi[u] * rhat).sum() for u in users])
    for name in ("ips", "snips", "dr"):
        e = est[name]
        assert e.covers(true_value), f"{name}: {e} does not cover the simulated value {true_value:.4f}"
        assert e.high - e.low < 0.35 * true_value, f"{name}: interval too wide to mean anything: {e}"
    # and the estimates tell the target from the logging policy (whose value is much lower here)
    assert est["dr"].low > logged_rewards.sum(1).mean()


def test_intra_list_diversity_and_baselines():
    tree = small_tree()
    assert intra_list_diversity(tree.codes[[0, 1]]) == 0.0  # same leaf
    assert intra_list_diversity(tree.codes[[0, 5]]) == 0.5  # same level-1 node, other child
    assert intra_list_diversity(tree.codes[[0, 10]]) == 1.0
    rnd = RandomTopNPolicy(k=3, n=6).fit(tree)
    scores = -np.arange(tree.n_items, dtype=float)
    s = rnd.slate("u", None, None, scores, exclude=[0])
    assert set(s.items.tolist()) <= set(range(1, 7)) and np.allclose(s.propensities, 1 / 6)
    with pytest.raises(ConfigError, match="n=2"):
        RandomTopNPolicy(k=3, n=2).fit(tree)


def test_head_slots_go_to_the_best_items_and_the_rest_to_other_interests():
    tree = small_tree(per_kid=10)  # 60 items, 3 level-1 nodes of 20
    long, short = dists(tree, [0.6, 0.3, 0.1])
    scores = np.random.default_rng(0).normal(size=tree.n_items)
    scores[:20] += 3.0  # the strongest node holds the best-scored items: greedy fills the slate from it
    exclude = np.array([0, 1])
    greedy = GreedyPolicy(k=10).fit(tree).slate("u", long, short, scores, exclude=exclude)
    assert (greedy.nodes == 0).all()
    full = SlatePolicy(k=10, explore=False, head=10).fit(tree).slate("u", long, short, scores, exclude=exclude)
    np.testing.assert_array_equal(full.items, greedy.items)  # head = k: greedy top-k
    part = SlatePolicy(k=10, explore=True, head=4, n_draws=200, seed=3).fit(tree)
    slate = part.slate("u", long, short, scores, exclude=exclude)
    assert len(slate.items) == 10 and len(set(slate.items.tolist())) == 10
    assert not np.isin(slate.items, exclude).any()
    head_at = np.isin(slate.items, greedy.items[:4])
    assert head_at.sum() == 4  # the head is in every slate, with certainty
    np.testing.assert_allclose(slate.inclusion[head_at], 1.0)
    # the shared slots count the head's 4 in node 0: node 0's share of the 10 falls from greedy's 10 and the
    # D'Hondt allocation of the other 6 by (0.6, 0.3, 0.1) with node 0 starting at 4 gives it 2 of them
    alloc = SlatePolicy(k=10, explore=False, floor=0.0, score_weight=0.0, head=4).fit(tree)
    np.testing.assert_allclose(alloc.expected_allocation("u", long, short, scores, exclude), [6, 3, 1])
    assert alloc.version_ != SlatePolicy(k=10, explore=False, floor=0.0, score_weight=0.0).fit(tree).version_
    # the head gives way as feedback comes: 4 x 20 / (20 + 10 slots shown) = 2.67 -> 3 slots, then fewer
    follows = SlatePolicy(k=10, explore=False, head=4, prior_strength=20.0, memory=1.0).fit(tree)
    assert follows.head_slots("u") == 4
    follows.update("u", np.zeros(10, dtype=np.int64), np.zeros(10))
    assert follows.head_slots("u") == 3
    for _ in range(20):
        follows.update("u", np.zeros(10, dtype=np.int64), np.zeros(10))
    assert follows.head_slots("u") == 0 and follows.head_slots("other") == 4
    with pytest.raises(ConfigError):
        SlatePolicy(k=10, head=11).fit(tree)
