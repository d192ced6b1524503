"""User interest profiles, segments, explanations and the HTML report (arborec.profiles)."""

import html
import json
import shutil
import subprocess

import numpy as np
import pytest

from arborec.data import Histories
from arborec.diagnostics import ConfigError, NotFittedError
from arborec.hierarchy import InterestTree
from arborec.profiles import ProfileBuilder, Segmenter, UserProfile, explain, representative_items


def _tree_from_paths(catalog) -> InterestTree:
    """A tree from the synthetic catalogue's three-level category paths (built by hand, no builder)."""
    paths = [tuple(p) for p in catalog["category_path"]]
    codes, parents, labels = np.zeros((len(paths), 3), dtype=np.int64), [], []
    for lv in range(3):
        keys = sorted({p[:lv + 1] for p in paths})
        index = {k: i for i, k in enumerate(keys)}
        codes[:, lv] = [index[p[:lv + 1]] for p in paths]
        up = {k: i for i, k in enumerate(sorted({p[:lv] for p in paths}))}
        parents.append(np.array([up[k[:-1]] for k in keys]))
        labels.append([k[-1] for k in keys])
    return InterestTree(codes=codes, parents=parents, labels=labels, source="categories")


@pytest.fixture(scope="module")
def setup(synthetic):
    data, split = synthetic
    tree = _tree_from_paths(data.catalog)
    users = np.arange(data.n_users)
    histories = split.histories("test", users)
    builder = ProfileBuilder(tree, half_life=10, short_window=3).fit(histories)
    return data, split, tree, histories, builder, builder.transform(histories, users=users)


def _tiny_tree() -> InterestTree:
    # items 0,1 -> A/a ; 2 -> A/b ; 3,4 -> B/c
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 2], [1, 2]])
    return InterestTree(codes=codes, parents=[np.zeros(2), np.array([0, 0, 1])],
                        labels=[["A", "B"], ["a", "b", "c"]], source="learned")


def test_profiles_sum_to_one_per_level(setup):
    _, _, tree, histories, _, batch = setup
    for scale in (batch.long, batch.short, batch.combined):
        for level, m in enumerate(scale):
            assert m.shape == (len(histories), tree.level_sizes[level])
            np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0, atol=1e-9)
            assert m.min() >= 0
    np.testing.assert_allclose(np.asarray(batch.flat().sum(axis=1)).ravel(), 1.0, atol=1e-9)
    p = batch.profile(3)
    for dists in (p.long, p.short, p.combined):
        np.testing.assert_allclose([d.sum() for d in dists], 1.0)


def test_long_term_decays_and_short_term_is_the_window():
    tree = _tiny_tree()
    # one user: three B items long ago, then two A items
    h = Histories(indptr=np.array([0, 5]), items=np.array([3, 4, 3, 0, 1], dtype=np.int32))
    batch = ProfileBuilder(tree, half_life=1.0, short_window=2, long_weight=0.25).fit_transform(h)
    long, short = batch.long[0].toarray()[0], batch.short[0].toarray()[0]
    np.testing.assert_allclose(short, [1.0, 0.0])  # the last two events are both under A
    # weights 1/16, 1/8, 1/4 (B) and 1/2, 1 (A): A holds 1.5 / 1.9375
    np.testing.assert_allclose(long, [1.5 / 1.9375, 0.4375 / 1.9375])
    np.testing.assert_allclose(batch.combined[0].toarray()[0], 0.25 * long + 0.75 * short)
    flat = ProfileBuilder(tree, half_life=float("inf")).fit_transform(h).long[0].toarray()[0]
    np.testing.assert_allclose(flat, [0.4, 0.6])  # no decay: plain counts


def test_time_decay_in_days_and_empty_history_gets_the_population():
    tree = _tiny_tree()
    h = Histories(indptr=np.array([0, 2, 2]), items=np.array([3, 0], dtype=np.int32))
    days = np.array([0, 86_400 * 2])  # the B item is two days older than the A item
    builder = ProfileBuilder(tree, half_life=2.0, time_unit="days").fit(h)
    batch = builder.transform(h, times=days)
    np.testing.assert_allclose(batch.long[0].toarray()[0], [1 / 1.5, 0.5 / 1.5])
    np.testing.assert_allclose(batch.long[0].toarray()[1], builder.prior_[0])  # no history: the population
    with pytest.raises(ConfigError, match="time_unit"):
        builder.transform(h)  # days but no times
    with pytest.raises(NotFittedError):
        ProfileBuilder(tree).transform(h)
    with pytest.raises(ConfigError, match="short_window"):
        ProfileBuilder(tree, short_window=0).fit(h)


def test_recomputation_is_stable_and_json_round_trips(setup):
    _, _, tree, histories, builder, batch = setup
    again = builder.transform(histories, users=np.arange(len(histories)))
    for a, b in zip(batch.long + batch.short, again.long + again.short):
        assert (a != b).nnz == 0
    for b in (0, 7, 42):
        d = batch.profile(b).to_dict()
        assert d == again.profile(b).to_dict()
        text = json.dumps(d)
        back = UserProfile.from_dict(json.loads(text))
        assert back.to_dict() == d
        for lv in range(tree.n_levels):
            np.testing.assert_array_equal(back.combined[lv], batch.profile(b).combined[lv])


def test_interests_carry_representative_items_from_the_history(setup):
    _, _, tree, histories, _, batch = setup
    p = batch.profile(5)
    assert p.interests
    seen = set(histories.sequence(5).tolist())
    for interest in p.interests:
        assert interest.items and set(interest.items) <= seen
        for item in interest.items:  # each lies under the interest's node
            assert tree.codes[item, interest.level - 1] == interest.node
        assert interest.path == tree.path_labels(interest.items[0])[:interest.level]
    weights = [p.level_weights[i.level - 1] * i.combined for i in p.interests]
    assert weights == sorted(weights, reverse=True)


def test_medoid_is_the_central_item():
    vectors = np.array([[1.0, 0.0], [0.7, 0.7], [0.0, 1.0], [0.0, 2.0]])
    # item 1 lies between the others (3 points the same way as 2); without vectors the most recent come first
    assert representative_items(np.array([0, 1, 2]), vectors, k=1) == [1]
    assert representative_items(np.array([0, 1, 3, 2]), vectors, k=2) == [1, 2]  # tie of 2 and 3: the more recent
    assert representative_items(np.array([0, 1, 2, 3, 3]), None, k=2) == [3, 2]


def test_from_distributions_normalises_and_checks_shapes():
    tree = _tiny_tree()
    p = UserProfile.from_distributions(tree, [np.array([3.0, 1.0]), np.array([1.0, 1.0, 2.0])],
                                       [np.array([0.0, 0.0]), np.array([0.0, 0.0, 5.0])], long_weight=0.5,
                                       history=[3, 0])
    np.testing.assert_allclose(p.long[0], [0.75, 0.25])
    np.testing.assert_allclose(p.short[0], [0.5, 0.5])  # all-zero level: uniform
    np.testing.assert_allclose(p.combined[1], [0.125, 0.125, 0.75])
    with pytest.raises(ConfigError, match="shape"):
        UserProfile.from_distributions(tree, [np.ones(3), np.ones(3)], [np.ones(2), np.ones(3)])
    # a model's profile of a new user (no history): the deepest node with enough weight explains
    new = UserProfile.from_distributions(tree, [np.array([0.9, 0.1]), np.array([0.88, 0.01, 0.11])],
                                         [np.array([0.9, 0.1]), np.array([0.88, 0.01, 0.11])])
    assert explain(new, 2, tree).level == 1 and explain(new, 2, tree).support == []  # A/b holds 1 %
    assert explain(new, 0, tree).level == 2 and explain(new, 0, tree).time_scale == "long"


def test_batch_from_a_models_distributions_equals_the_counted_one(setup):
    from arborec.profiles import ProfileBatch

    _, _, tree, histories, _, batch = setup
    long = [3.0 * m.toarray() for m in batch.long]  # unnormalised on purpose
    short = [m.toarray() for m in batch.short]
    again = ProfileBatch.from_distributions(tree, long, short, histories, long_weight=batch.long_weight)
    for a, b in zip(again.combined, batch.combined):
        np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-12)
    assert [(i.level, i.node, i.items) for i in again.profile(4).interests] == \
        [(i.level, i.node, i.items) for i in batch.profile(4).interests]
    np.testing.assert_allclose(again.flat().toarray(), batch.flat().toarray(), atol=1e-12)
    with pytest.raises(ConfigError, match="long"):
        ProfileBatch.from_distributions(tree, long[:1], short, histories)


def test_explanations_point_to_real_history_items(setup):
    _, split, tree, histories, _, batch = setup
    checked = 0
    for b in range(0, 200, 7):
        p = batch.profile(b)
        target = int(split.test_target[b])
        e = explain(p, target, tree)
        history = histories.sequence(b)
        if e.level == 0:
            assert not np.any(tree.codes[history, 0] == tree.codes[target, 0])
            continue
        checked += 1
        assert e.support and set(e.support) <= set(history.tolist())
        for item in e.support:
            assert tree.codes[item, e.level - 1] == tree.codes[target, e.level - 1]
        # deepest shared node: no history item shares the next level's node with the target
        if e.level < tree.n_levels:
            assert not np.any(tree.codes[history, e.level] == tree.codes[target, e.level])
        last = [i for i in history[::-1] if tree.codes[i, e.level - 1] == e.node]
        assert e.support[0] == last[0]  # most recent first
        assert e.time_scale in ("long", "short") and e.weight == pytest.approx(p.combined[e.level - 1][e.node])
    assert checked > 10


def test_explain_outside_interests_and_bad_item():
    tree = _tiny_tree()
    p = ProfileBuilder(tree).fit_transform(Histories(np.array([0, 2]), np.array([0, 1], dtype=np.int32))).profile(0)
    e = explain(p, 3, tree)
    assert e.level == 0 and e.support == [] and "outside" in str(e)
    e = explain(p, 2, tree)
    assert e.level == 1 and e.path == ["A"] and e.support == [1, 0]
    assert explain(json.loads(json.dumps(p.to_dict())), 2, tree) == e  # from the JSON form too
    with pytest.raises(ConfigError, match="item"):
        explain(p, 99, tree)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "gmm"])
def test_segments_find_the_planted_tops_and_assign_new_users_deterministically(setup, method):
    data, split, tree, histories, builder, batch = setup
    seg = Segmenter(method=method, n_segments=4, seed=0).fit(batch)
    assert seg.sizes_.sum() == len(histories) and len(seg.names_) == 4
    # the synthetic users each favour one or two of 4 top categories: the 4 segments name them
    tops = {name.split(" > ")[0].split(" (")[0] for name in seg.names_}
    assert len(tops) >= 3 and tops <= set(tree.labels[0])
    new = builder.transform(Histories(np.array([0, 3, 5]), np.array([0, 1, 2, 200, 201], dtype=np.int32)))
    first = seg.predict(new)
    assert first.dtype == np.int64 and np.array_equal(first, seg.predict(new))
    again = Segmenter(method=method, n_segments=4, seed=0).fit(batch)
    assert np.array_equal(again.predict(new), first)
    assert seg.predict(batch.profile(0))[0] == seg.labels_[0]
    assert np.array_equal(seg.predict(batch), seg.labels_)  # fitted users are assigned as they were clustered
    for s, reps in enumerate(seg.representatives_):
        assert all(seg.labels_[r] == s for r in reps)


def test_segment_count_is_chosen_by_the_criterion(setup):
    batch = setup[-1]
    seg = Segmenter(n_segments="auto", k_range=(2, 6), seed=0).fit(batch)
    assert set(seg.scores_) == set(range(2, 7))
    assert seg.n_segments_ == max(seg.scores_, key=seg.scores_.get)
    assert seg.silhouette_ > 0.1
    with pytest.raises(ConfigError, match="method"):
        Segmenter(method="dbscan").fit(batch)
    with pytest.raises(NotFittedError):
        Segmenter().predict(batch)


@pytest.fixture(scope="module")
def report_html(setup):
    pytest.importorskip("matplotlib")
    from arborec.profiles import build_report

    data, _, tree, _, _, batch = setup
    seg = Segmenter(n_segments=4, levels=[1], seed=0).fit(batch)
    return seg, build_report(tree, batch, seg, titles=data.catalog["title"], n_users=3, dataset="synthetic")


def test_report_is_self_contained_html_with_the_figures(report_html, setup):
    seg, text = report_html
    data = setup[0]
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<svg") == 2 + 3  # sunburst, segment map, one bar chart per shown user
    assert "<script" not in text and "<link" not in text and "src=" not in text  # nothing fetched
    for name in seg.names_:
        assert html.escape(name) in text
    assert "Volumizing Shampoo" in text or "Mascara" in text  # tree labels drawn as text
    shown = [t for t in data.catalog["title"] if html.escape(t) in text]
    assert len(shown) >= 3  # representative and recent items are named


def test_report_renders_in_a_browser(report_html, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    page = tmp_path / "report.html"
    page.write_text(report_html[1], encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2000", page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists()
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 20  # not a blank page: figures and text were drawn
    assert (pixels < 128).mean() > 0.02


def test_segment_names_read_the_dominant_paths():
    from arborec.profiles._segments import _segment_name

    tree = _tiny_tree()  # A/{a, b}, B/{c}
    # one strong top split into its two children
    assert _segment_name(tree, [np.array([0.9, 0.1]), np.array([0.5, 0.4, 0.1])], 0.2) == "A > a (50%) + b (40%)"
    # two tops; B is followed down to its only child, A is not (no child holds 60 % of it)
    assert _segment_name(tree, [np.array([0.6, 0.4]), np.array([0.3, 0.3, 0.4])], 0.2) == "A (60%) + B > c (40%)"
    # an over-represented top that is not among the strongest is added with its lift
    name = _segment_name(tree, [np.array([0.9, 0.1]), np.array([0.8, 0.1, 0.1])], 0.2, population=np.array([0.98, 0.02]))
    assert name == "A > a (80%) · B ×5.0"


def test_report_command_writes_the_page(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from arborec.cli import main

    out = tmp_path / "r.html"
    assert main(["-q", "report", "--data", "synthetic", "--no-cache", "--no-vectors", "--segments", "4",
                 "--users", "2", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("<svg") == 2 + 2
    printed = capsys.readouterr().out
    assert "4 segments" in printed and str(out) in printed
