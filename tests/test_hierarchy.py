"""The interest tree: builders (categories, learned, RQ), invariants, labels, save/load, bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import normalized_mutual_info_score

from arborec.data import make_synthetic
from arborec.diagnostics import ConfigError
from arborec.hierarchy import (UNCATEGORISED, InterestTree, TreeLearner, build_tree, category_labels,
                               cooccurrence_graph, label_tree, learn_tree, normalise_paths, residual_codes,
                               semantic_ids, tree_from_categories)
from arborec.hierarchy._nodes import codes_from_keys


@pytest.fixture(scope="module")
def catalog():
    """288 items under a planted 4 > 8 > 24 taxonomy (make_synthetic's catalogue)."""
    return make_synthetic(n_users=50, items_per_leaf=12, seed=0).catalog


@pytest.fixture(scope="module")
def planted_vectors(catalog):
    """Item vectors that follow the planted taxonomy: top + middle + leaf directions + noise."""
    rng = np.random.default_rng(0)
    dim = 32
    parts = {}

    def direction(key, scale):
        if key not in parts:
            parts[key] = rng.normal(size=dim) * scale
        return parts[key]

    rows = []
    for top, mid, leaf in catalog["category_path"]:
        v = direction(top, 1.0) + direction((top, mid), 0.6) + direction((top, mid, leaf), 0.4)
        rows.append(v + rng.normal(size=dim) * 0.12)
    return np.array(rows, dtype=np.float32)


def assert_tree_invariants(tree: InterestTree, n_items: int):
    """Every item on exactly one leaf, parents consistent, levels complete, no empty node."""
    assert tree.codes.shape == (n_items, tree.n_levels)
    for level in range(1, tree.n_levels + 1):
        sizes = tree.node_sizes(level)
        assert len(sizes) == tree.level_sizes[level - 1]
        assert sizes.sum() == n_items  # every item in exactly one node per level
        assert (sizes > 0).all()  # no empty node
        parents = tree.parents[level - 1]
        n_up = 1 if level == 1 else tree.level_sizes[level - 2]
        assert set(np.unique(parents)) == set(range(n_up))  # every node above has a child
        if level > 1:
            assert np.array_equal(parents[tree.codes[:, level - 1]], tree.codes[:, level - 2])
            for node in range(n_up):  # a node's items are exactly its children's items
                below = np.concatenate([tree.members(level, c) for c in tree.children(level - 1, node)])
                assert np.array_equal(np.sort(below), tree.members(level - 1, node))
        assert len(tree.labels[level - 1]) == tree.level_sizes[level - 1]
        assert all(isinstance(x, str) and x for x in tree.labels[level - 1])
    leaves = tree.codes[:, -1]
    assert len(np.unique(leaves)) == tree.level_sizes[-1]


# -- categories ------------------------------------------------------------------------------
def test_category_tree_follows_the_given_paths(catalog):
    tree = tree_from_categories(catalog)
    assert_tree_invariants(tree, len(catalog))
    assert tree.source == "categories" and tree.level_sizes == [4, 8, 24]
    for i in (0, 100, 287):
        assert tree.path_labels(i) == list(catalog["category_path"][i])
    assert sorted(tree.labels[0]) == ["Fragrance", "Hair Care", "Makeup", "Skin Care"]
    assert tree.node_sizes(1).tolist() == [72, 72, 72, 72]


def test_category_paths_are_normalised():
    paths = [["Beauty", " Hair  Care", "Hair Care", "Shampoos", "Dry", "Too deep"],
             ["Beauty", "Hair Care", "Conditioners"],
             ["Beauty", "Makeup"],  # shallow: repeats downwards
             None,  # no path: the explicit uncategorised node
             [],
             ["Beauty", "Skin Care", "Face", "Serum"],
             ]
    cat = pd.DataFrame({"item": list("abcdef"), "category_path": paths})
    tree = tree_from_categories(cat, max_depth=3)
    assert_tree_invariants(tree, 6)
    assert tree.path_labels(0) == ["Hair Care", "Shampoos", "Dry"]  # root dropped, duplicate collapsed, cut
    assert tree.path_labels(2) == ["Makeup", "Makeup", "Makeup"]
    assert tree.path_labels(3) == [UNCATEGORISED] * 3 and tree.path(3) == tree.path(4)
    assert "Beauty" not in sum(tree.labels, [])
    assert tree.meta["n_uncategorised"] == 2
    assert tree_from_categories(cat, max_depth=1).level_sizes == [4]
    # A root shared by every item only disappears when some path goes deeper.
    assert normalise_paths([["All"], ["All"]]) == [["All"], ["All"]]
    assert normalise_paths([["All", "Beauty", "X"], ["All", "Beauty", "Y"]]) == [["X"], ["Y"]]


def test_several_paths_per_item_pick_deterministically():
    a = [["Beauty", "Makeup", "Eyes"], ["Beauty", "Hair Care", "Styling", "Gels"], ["Beauty", "Bath", "Soap", "Bar"]]
    picked = normalise_paths([a, a[::-1]], drop_shared_root=False)
    assert picked[0] == picked[1] == ["Beauty", "Bath", "Soap", "Bar"]  # deepest, then alphabetical


def test_category_centroids_are_normalised_means(catalog, planted_vectors):
    tree = tree_from_categories(catalog, vectors=planted_vectors)
    members = tree.members(2, 3)
    mean = planted_vectors[members].mean(axis=0)
    np.testing.assert_allclose(tree.centroids[1][3], mean / np.linalg.norm(mean), rtol=1e-4, atol=1e-5)
    assert [c.shape for c in tree.centroids] == [(4, 32), (8, 32), (24, 32)]


# -- learned ---------------------------------------------------------------------------------
def test_learned_tree_recovers_the_planted_hierarchy(catalog, planted_vectors):
    tree = learn_tree(planted_vectors, branching=(4, 2, 3), seed=0)
    assert_tree_invariants(tree, len(catalog))
    assert tree.source == "learned" and tree.level_sizes == [4, 8, 24]
    truth = [category_labels(catalog, level).astype(str) for level in (1, 2, 3)]
    nmi = [normalized_mutual_info_score(truth[level], tree.codes[:, level]) for level in range(3)]
    assert nmi[0] > 0.9 and nmi[1] > 0.8 and nmi[2] > 0.6, nmi  # chance is about 0.0-0.2


def test_learned_tree_is_deterministic_per_seed(planted_vectors):
    a = learn_tree(planted_vectors, branching=(3, 3), seed=1, n_init=2)
    b = learn_tree(planted_vectors, branching=(3, 3), seed=1, n_init=2)
    assert np.array_equal(a.codes, b.codes) and a.labels == b.labels
    assert a.meta["seed"] == 1


def test_learned_tree_smoothing_and_graph(catalog, planted_vectors):
    events = make_synthetic(n_users=60, items_per_leaf=12, seed=0).interactions
    index = {item: i for i, item in enumerate(catalog["item"])}
    rows = pd.factorize(events["user"])[0]
    cols = events["item"].map(index).to_numpy()
    import scipy.sparse as sp

    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(rows.max() + 1, len(catalog)))
    graph = cooccurrence_graph(matrix)
    assert graph.shape == (288, 288) and graph.diagonal().sum() == 0
    assert (graph != graph.T).nnz == 0
    learner = TreeLearner(branching=(4,), n_init=2).fit(planted_vectors, graph=graph)
    assert_tree_invariants(learner.tree_, 288)
    assert learner.tree_.meta["graph_weight"] == 0.5
    plain = TreeLearner(branching=(4,), smoothing=0.0, n_init=2).fit(planted_vectors)
    raw = planted_vectors / np.linalg.norm(planted_vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(plain.smoothed_, raw, atol=1e-6)
    assert not np.allclose(learner.smoothed_, raw)


def test_small_nodes_and_duplicates_still_give_a_complete_tree():
    v = np.repeat(np.eye(3, dtype=np.float32), [1, 1, 5], axis=0)  # 7 items, 3 distinct vectors
    tree = learn_tree(v, branching=(5, 4), n_init=1, smoothing=0.0)
    assert_tree_invariants(tree, 7)
    assert tree.level_sizes == [3, 3]  # never more children than distinct items
    one = learn_tree(np.ones((1, 4), dtype=np.float32), branching=(3, 2))
    assert one.level_sizes == [1, 1] and one.path(0) == [0, 0]


# -- RQ semantic ids -------------------------------------------------------------------------
def test_rq_tree_is_a_prefix_tree(planted_vectors):
    tree = semantic_ids(planted_vectors, n_levels=3, codebook_size=(4, 4, 4), seed=0)
    assert_tree_invariants(tree, len(planted_vectors))
    assert tree.source == "rq" and tree.level_sizes[0] == 4
    assert tree.level_sizes[1] <= 16 and tree.level_sizes[2] <= 64
    # Labels spell the code prefix, which the parent's label starts.
    j = tree.codes[5, 2]
    assert tree.labels[2][j].startswith(tree.labels[1][tree.parents[2][j]] + "-")


def test_rq_residuals_shrink_level_by_level(planted_vectors):
    ids, books = residual_codes(planted_vectors, n_levels=3, codebook_size=8, seed=0)
    x = planted_vectors / np.linalg.norm(planted_vectors, axis=1, keepdims=True)
    errors, approx = [], np.zeros_like(x)
    for level in range(3):
        approx = approx + books[level][ids[:, level]]
        errors.append(float(np.linalg.norm(x - approx, axis=1).mean()))
    assert errors[0] > errors[1] > errors[2]


# -- labels ----------------------------------------------------------------------------------
def test_labels_are_keywords_distinct_among_siblings(catalog, planted_vectors):
    tree = label_tree(learn_tree(planted_vectors, branching=(4, 2, 3), n_init=2), catalog["title"].tolist(),
                      categories=catalog["category_path"])
    for level in range(3):
        for p in np.unique(tree.parents[level]):
            siblings = [tree.labels[level][j] for j in np.flatnonzero(tree.parents[level] == p)]
            assert len(set(siblings)) == len(siblings)
    tops = {lab.split(" · ")[0] for lab in tree.labels[0]}
    assert tops == {"Fragrance", "Hair Care", "Makeup", "Skin Care"}  # dominant category first
    # The leaf holding the mascaras is labelled with the word that sets it apart.
    leaf = tree.codes[catalog["title"].str.contains("Mascara").to_numpy(), 2]
    assert "mascara" in tree.labels[2][np.bincount(leaf).argmax()]
    assert len(tree.meta["keywords"][2][0]) <= 3


def test_label_tree_without_categories_and_empty_texts(catalog, planted_vectors):
    tree = learn_tree(planted_vectors, branching=(4,), n_init=2)
    labelled = label_tree(tree, catalog["title"].tolist())
    assert all(" · " not in lab and lab for lab in labelled.labels[0])
    blank = label_tree(tree, [""] * len(catalog))
    assert blank.labels == tree.labels  # nothing to say: the old labels stay
    with pytest.raises(ConfigError, match="texts"):
        label_tree(tree, ["x"] * 3)


# -- build, save, show -----------------------------------------------------------------------
@pytest.mark.parametrize("source", ["categories", "learned", "rq"])
def test_save_load_round_trip(tmp_path, catalog, planted_vectors, source):
    tree = build_tree(catalog, planted_vectors, source=source, depth=2, n_init=2, codebook_size=4)
    assert_tree_invariants(tree, len(catalog))
    back = InterestTree.load(tree.save(tmp_path / "tree.npz"))
    assert back.source == source and back.labels == tree.labels and back.meta == json.loads(json.dumps(tree.meta))
    assert np.array_equal(back.codes, tree.codes)
    assert all(np.array_equal(a, b) for a, b in zip(back.parents, tree.parents))
    assert all(np.allclose(a, b) for a, b in zip(back.centroids, tree.centroids))
    json.dumps(tree.to_dict())
    text = tree.to_text(max_children=2, max_depth=2)
    assert tree.labels[0][0] in text and "more" in text


def test_build_tree_auto_picks_categories_only_when_informative(catalog, planted_vectors):
    assert build_tree(catalog, planted_vectors).source == "categories"
    bare = catalog.assign(category_path=[[] for _ in range(len(catalog))])
    tree = build_tree(bare, planted_vectors, depth=2, n_init=2)
    assert tree.source == "learned" and tree.n_levels == 2


def test_bad_input_is_refused(catalog, planted_vectors):
    nan = planted_vectors.copy()
    nan[7, 3] = np.nan
    with pytest.raises(ConfigError, match="row 7"):
        learn_tree(nan, branching=(2,))
    with pytest.raises(ConfigError, match="shape"):
        learn_tree(planted_vectors[0], branching=(2,))
    with pytest.raises(ConfigError, match="branching"):
        learn_tree(planted_vectors, branching=())
    with pytest.raises(ConfigError, match="branching"):
        learn_tree(planted_vectors, branching=(0, 2))
    with pytest.raises(ConfigError, match="smoothing"):
        learn_tree(planted_vectors, branching=(2,), smoothing=1.0)
    with pytest.raises(ConfigError, match="depth"):
        build_tree(catalog, planted_vectors, source="learned", depth=0)
    with pytest.raises(ConfigError, match="max_depth"):
        tree_from_categories(catalog, max_depth=0)
    with pytest.raises(ConfigError, match="rows"):
        build_tree(catalog, planted_vectors[:10], source="learned")
    with pytest.raises(ConfigError, match="needs item vectors"):
        build_tree(catalog, None, source="rq")
    with pytest.raises(ConfigError, match="source"):
        build_tree(catalog, planted_vectors, source="magic")
    with pytest.raises(ConfigError, match="graph"):
        TreeLearner(branching=(2,)).fit(planted_vectors, graph=np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="n_levels"):
        semantic_ids(planted_vectors, n_levels=0)


def test_codes_from_keys_numbers_children_largest_first():
    keys = np.array([[5, 1], [5, 1], [5, 2], [3, 0], [5, 1]])
    codes, parents, node_keys = codes_from_keys(keys)
    assert codes[:, 0].tolist() == [0, 0, 0, 1, 0]  # key 5 holds 4 items: node 0
    assert node_keys[1].tolist() == [1, 2, 0] and parents[1].tolist() == [0, 0, 1]


def test_cli_tree_prints_an_outline(tmp_path, capsys):
    from arborec.cli import main

    out = tmp_path / "t.npz"
    assert main(["-q", "tree", "--data", "synthetic", "--source", "categories", "--out", str(out),
                 "--json", str(tmp_path / "t.json")]) == 0
    printed = capsys.readouterr().out
    assert "categories tree" in printed and "Skin Care" in printed and "    " in printed
    assert InterestTree.load(out).level_sizes[0] == 4
    assert json.loads((tmp_path / "t.json").read_text())["level_sizes"][0] == 4


@pytest.mark.realdata
def test_amazon_beauty_category_tree_drops_the_shared_root(shared_data_dir):
    from arborec.data import load_prepared

    if not (shared_data_dir / "amazon-beauty").exists():
        pytest.skip("amazon-beauty not in the shared data folder")
    data = load_prepared("amazon-beauty", data_dir=shared_data_dir)
    tree = tree_from_categories(data.catalog)
    assert_tree_invariants(tree, data.n_items)
    assert {"Skin Care", "Hair Care", "Makeup"} <= set(tree.labels[0]) and "Beauty" not in tree.labels[0]
