"""Sequence-file loaders (MovieLens-1M sequences, P5 Toys and Sports) and the tree of a catalogue without text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arborec.data import (PrepareConfig, describe_datasets, has_item_text, load_dataset, prepare, read_folder,
                          read_item_attributes)
from arborec.data._registry import REGISTRY
from arborec.diagnostics import DataFormatError
from arborec.hierarchy import build_tree
from arborec.model._trees import default_tree

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def assert_error_at(excinfo, filename: str, line: int) -> None:
    err = excinfo.value
    assert Path(err.path).name == filename and err.line == line
    assert f"{filename}, line {line}: expected" in str(err)


def histories(data) -> dict[str, list[str]]:
    """Original user id -> original item ids in the prepared order."""
    inter = data.interactions
    items = data.item_ids[inter["item_idx"].to_numpy()]
    users = data.user_ids[inter["user_idx"].to_numpy()]
    out: dict[str, list[str]] = {}
    for u, i in zip(users, items):
        out.setdefault(str(u), []).append(str(i))
    return out


# --------------------------------------------------------------------------------------------
# MovieLens-1M as sequences: user_sequence.txt + movies.dat


ML_SEQUENCES = "10 3 1 2\n2 2 3\n"
ML_MOVIES = ("1::Toy Story (1995)::Animation|Children's|Comedy\n"
             "2::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n"
             "3::Heat (1995)::Action|Crime|Thriller\n"
             "4::Never Watched (1999)::Drama\n")


@pytest.fixture
def ml1m_seq(tmp_path) -> Path:
    folder = tmp_path / "ml-1m"
    write(folder / "user_sequence.txt", ML_SEQUENCES)
    write(folder / "movies.dat", ML_MOVIES, encoding="latin-1")
    return folder


def test_ml1m_sequences_keep_file_order_and_read_movies(ml1m_seq):
    ds = load_dataset("ml-1m", data_dir=ml1m_seq.parent, download=False)
    assert ds.name == "ml-1m" and not ds.has_timestamps and ds.has_text
    assert len(ds.interactions) == 5
    data = prepare(ds, PrepareConfig(user_core=0, item_core=0))
    assert histories(data) == {"10": ["3", "1", "2"], "2": ["2", "3"]}  # file order, not id order
    cat = ds.catalog.set_index("item")
    assert cat.loc["2", "title"] == "Cité des enfants perdus, La" and cat.loc["2", "year"] == "1995"
    assert cat.loc["3", "genres"] == "Action Crime Thriller" and cat.loc["3", "category_path"] == ["Action"]
    assert read_folder(ml1m_seq).name == "ml-1m"  # recognised by its files too


def test_ml1m_still_reads_the_official_ratings(ml1m_seq):
    write(ml1m_seq / "ratings.dat", "1::1::5::978300760\n1::2::3::978302109\n")
    ds = load_dataset("movielens-1m", data_dir=ml1m_seq.parent, download=False)
    assert ds.has_timestamps and len(ds.interactions) == 2 and "rating" in ds.interactions
    ratings_only = ml1m_seq.parent / "other" / "ml-1m"
    write(ratings_only / "ratings.dat", "1::1::5::978300760\n")
    assert len(load_dataset("ml-1m", data_dir=ratings_only.parent, download=False).interactions) == 1


@pytest.mark.parametrize("content,line", [("1 2 3\n2\n", 2), ("1 2 3\n2 3 x4\n", 2), ("1 2\n\nu 3\n", 3)])
def test_ml1m_sequences_malformed_line(tmp_path, content, line):
    write(tmp_path / "user_sequence.txt", content)
    write(tmp_path / "movies.dat", ML_MOVIES)
    with pytest.raises(DataFormatError) as excinfo:
        read_folder(tmp_path)
    assert_error_at(excinfo, "user_sequence.txt", line)


def test_ml1m_sequences_malformed_movie_line(ml1m_seq):
    write(ml1m_seq / "movies.dat", ML_MOVIES + "5::No genres field (2000)\n", encoding="latin-1")
    with pytest.raises(DataFormatError) as excinfo:
        load_dataset("ml-1m", data_dir=ml1m_seq.parent, download=False)
    assert_error_at(excinfo, "movies.dat", 5)


# --------------------------------------------------------------------------------------------
# Amazon Toys (P5): user_sequence.txt + item_meta.jsonl


def meta(item_id, title, categories, asin=None) -> str:
    return json.dumps({"item_id": item_id, "asin": asin or f"B{item_id:09d}", "title": title,
                       "categories": categories}) + "\n"


TOYS_META = (
    meta(1, "Melissa &amp; Doug Puzzle", [["Toys & Games", "Puzzles", "Jigsaw Puzzles"]])
    + meta(2, "Gloom &reg; Card Game", [["Toys & Games", "Games"],
                                        ["Toys & Games", "Games", "Card Games", "Collectible"],
                                        ["Clothing, Shoes & Jewelry", "Novelty", "Costumes", "Kids", "Boys"]])
    + meta(3, "Wii U Game", [["Video Games", "Wii U", "Games", "Kids"], ["Toys & Games", "Electronics"]])
    + meta(4, "  Plain   ball ", [["Toys & Games", "Sports", "Balls"], ["Toys & Games", "Outdoor", "Balls"]])
    + meta(5, "Only elsewhere", [["Video Games", "PC", "Games"]])
)


@pytest.fixture
def toys(tmp_path) -> Path:
    folder = tmp_path / "amazon-toys"
    write(folder / "user_sequence.txt", "1 1 2 3\n2 4 5 1\n3 2 4\n")
    write(folder / "item_meta.jsonl", TOYS_META)
    write(folder / "datamaps.json", json.dumps({"id2user": {"1": "A1"}, "id2item": {"1": "B000000001"}}))
    return folder


def test_toys_titles_unescaped_and_deepest_path_under_the_main_root(toys):
    ds = load_dataset("toys", data_dir=toys.parent, download=False)
    assert ds.name == "amazon-toys" and not ds.has_timestamps and ds.has_text
    cat = ds.catalog.set_index("item")
    assert cat.loc["1", "title"] == "Melissa & Doug Puzzle"
    assert cat.loc["2", "title"] == "Gloom \u00ae Card Game"
    assert cat.loc["4", "title"] == "Plain ball"
    assert cat.loc["1", "asin"] == "B000000001"
    # the deepest path under the main root wins over a deeper one elsewhere ...
    assert cat.loc["2", "category_path"] == ["Toys & Games", "Games", "Card Games", "Collectible"]
    assert cat.loc["3", "category_path"] == ["Toys & Games", "Electronics"]
    # ... ties go to the alphabetically first; no path under the main root: the deepest of all
    assert cat.loc["4", "category_path"] == ["Toys & Games", "Outdoor", "Balls"]
    assert cat.loc["5", "category_path"] == ["Video Games", "PC", "Games"]
    data = prepare(ds, PrepareConfig(user_core=0, item_core=0))
    assert histories(data) == {"1": ["1", "2", "3"], "2": ["4", "5", "1"], "3": ["2", "4"]}


@pytest.mark.parametrize("bad,expected", [("{not json\n", "one JSON object per line"),
                                          ('{"title": "no id"}\n', "'item_id'"),
                                          ('{"item_id": 9, "categories": ["flat", "list"]}\n', "list of category")])
def test_toys_malformed_meta_line(toys, bad, expected):
    write(toys / "item_meta.jsonl", meta(1, "ok", []) + bad)
    with pytest.raises(DataFormatError, match=expected) as excinfo:
        read_folder(toys)
    assert_error_at(excinfo, "item_meta.jsonl", 2)


# --------------------------------------------------------------------------------------------
# Amazon Sports (P5): user_sequence.txt + item_attributes.json, no item text

# attribute 2 is on every item (the root); category 8 nests in category 7, 3 in 9; 40 and 41 are brands:
# 40 cuts across 7 and 9 and is as frequent as 7, 41 sits on one item
SPORTS_ATTRIBUTES = {"1": [40, 2, 7, 8], "2": [41, 2, 7, 8, 2], "3": [40, 2, 7], "4": [2, 7, 8],
                     "5": [40, 2, 9], "6": [40, 2, 9, 3], "7": [2, 9]}


@pytest.fixture
def sports(tmp_path) -> Path:
    folder = tmp_path / "amazon-sports"
    write(folder / "user_sequence.txt", "1 1 2 3\n2 4 5 6\n3 6 1 7\n")
    write(folder / "item_attributes.json", json.dumps(SPORTS_ATTRIBUTES, indent=1))
    write(folder / "datamaps.json", json.dumps({"id2item": {str(i): f"ASIN{i}" for i in range(1, 8)}}))
    return folder


def test_sports_attribute_paths_coarse_to_fine_and_no_text(sports):
    ds = load_dataset("sports", data_dir=sports.parent, download=False)
    assert ds.name == "amazon-sports" and not ds.has_timestamps
    cat = ds.catalog.set_index("item")
    assert (cat["title"] == "").all()  # no text made up from the numbers
    assert not has_item_text(ds.catalog) and not ds.has_text
    assert cat.loc["1", "asin"] == "ASIN1"
    # root first, then the chain of nested categories, then the rest (brands): by nesting, not by frequency
    paths = cat["category_path"].to_dict()
    assert paths["1"] == ["attr-2", "attr-7", "attr-8", "attr-40"]  # frequency order: 2, 7, 40, 8
    assert paths["2"] == ["attr-2", "attr-7", "attr-8", "attr-41"]  # the repeated 2 counted once
    assert paths["5"] == ["attr-2", "attr-9", "attr-40"]  # frequency order: 2, 40, 9
    assert paths["6"] == ["attr-2", "attr-9", "attr-3", "attr-40"]
    assert paths["7"] == ["attr-2", "attr-9"]
    data = prepare(ds, PrepareConfig(user_core=0, item_core=0))
    assert not data.has_text
    assert histories(data)["2"] == ["4", "5", "6"]


def test_attribute_paths_edge_cases():
    from arborec.data.p5 import attribute_paths

    assert attribute_paths([["5", "10"], [], ["10"]]) == [["attr-10", "attr-5"], [], ["attr-10"]]
    assert attribute_paths([]) == []


def test_has_item_text_reads_the_text_fields_only():
    import pandas as pd

    paths = [["Hair", "Shampoo"]]
    assert not has_item_text(pd.DataFrame({"item": ["a"], "title": [""], "category_path": paths}))
    assert not has_item_text(pd.DataFrame({"item": ["a"], "title": [None], "brand": ["  "]}))
    assert has_item_text(pd.DataFrame({"item": ["a", "b"], "title": ["", None], "brand": ["", "Acme"]}))
    assert has_item_text(pd.DataFrame({"item": ["a"], "year": [1995]}))


def test_sports_malformed_attributes_name_file_and_line(tmp_path):
    path = write(tmp_path / "item_attributes.json", '{\n "1": [2, 3],\n "2": "brand 7"\n}')
    with pytest.raises(DataFormatError, match="list of attribute ids") as excinfo:
        read_item_attributes(path)
    assert_error_at(excinfo, "item_attributes.json", 3)
    write(path, '{\n "1": [2, 3],\n "2": [4 5]\n}')
    with pytest.raises(DataFormatError) as excinfo:
        read_item_attributes(path)
    assert_error_at(excinfo, "item_attributes.json", 3)


def test_sports_tree_follows_the_attribute_paths(sports):
    data = prepare(load_dataset("amazon-sports", data_dir=sports.parent, download=False),
                   PrepareConfig(user_core=0, item_core=0))
    same = np.tile(np.ones(8, dtype=np.float32) / np.sqrt(8), (data.n_items, 1))  # text-less vectors are all equal
    for tree in (build_tree(data, same), default_tree(data, same)):
        assert tree.source == "categories" and tree.n_levels == 3
        level1 = dict(zip(data.item_ids, (tree.labels[0][c] for c in tree.codes[:, 0])))
        assert level1 == {"1": "attr-7", "2": "attr-7", "3": "attr-7", "4": "attr-7", "5": "attr-9", "6": "attr-9",
                          "7": "attr-9"}  # categories on top: the brand attr-40 is no first-level node
        leaf = dict(zip(data.item_ids, tree.codes[:, 2]))
        assert leaf["1"] != leaf["2"]  # told apart by their brand attributes


def test_text_less_sparse_paths_still_give_the_tree(caplog):
    import pandas as pd

    # only 2 of 6 items have a path: not "informative", but without text they are all there is
    catalog = pd.DataFrame({"item": list("abcdef"), "title": "",
                            "category_path": [["attr-1", "attr-2"], ["attr-3"], [], [], [], []]})
    tree = build_tree(catalog, np.ones((6, 4), dtype=np.float32))
    assert tree.source == "categories" and tree.level_sizes[0] == 3  # attr-1, attr-3, (uncategorised)
    # with text, sparse paths are not enough: the tree is learned from the vectors, as before
    rng = np.random.default_rng(0)
    texty = catalog.assign(title=[f"item {c}" for c in catalog["item"]])
    assert build_tree(texty, rng.normal(size=(6, 4)).astype(np.float32), branching=(2, 2), n_init=1).source == "learned"
    with caplog.at_level("WARNING", logger="arborec"):
        build_tree(catalog.assign(category_path=[[]] * 6), rng.normal(size=(6, 4)).astype(np.float32),
                   branching=(2,), n_init=1)
    assert "no text" in caplog.text


def test_no_made_up_text_for_a_catalogue_without_text(sports, toys):
    from arborec.text import ItemTextTemplate, encode_items, render_items

    toys_catalog = load_dataset("amazon-toys", data_dir=toys.parent, download=False).catalog
    assert render_items(toys_catalog) == ItemTextTemplate().render(toys_catalog)
    assert render_items(toys_catalog)[0].startswith("Melissa & Doug Puzzle. Category: Toys & Games > Puzzles")

    class RecordingEncoder:
        model, backend_, model_key = "stub", "stub", "stub"
        seen: list = []

        def encode(self, texts, progress=False):
            self.seen.extend(texts)
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    encoder = RecordingEncoder()
    catalog = load_dataset("amazon-sports", data_dir=sports.parent, download=False).catalog
    assert render_items(catalog) == [""] * len(catalog)  # not "Category: attr-7 > attr-8 ..."
    vectors = encode_items(catalog, encoder, use_cache=False)
    assert vectors.shape == (len(catalog), 4) and encoder.seen == [""]  # one distinct text, encoded once


# --------------------------------------------------------------------------------------------
# The registry


def test_registry_knows_the_three(ml1m_seq, toys, sports):
    for name, alias in (("ml-1m", "movielens-1m"), ("amazon-toys", "toys"), ("amazon-sports", "sports")):
        assert REGISTRY[alias] is REGISTRY[name]
    table = describe_datasets(ml1m_seq.parent).set_index("name")
    for name in ("ml-1m", "amazon-toys", "amazon-sports"):
        assert table.loc[name, "location"] == str(ml1m_seq.parent / name)


# --------------------------------------------------------------------------------------------
# The real data beside the repository (skipped when absent): nothing lost by the default preparation


@pytest.mark.realdata
@pytest.mark.parametrize("name,marker,counts,has_text", [
    ("ml-1m", "user_sequence.txt", (6_040, 3_416, 999_611), True),
    ("amazon-toys", "item_meta.jsonl", (19_412, 11_924, 167_597), True),
    ("amazon-sports", "item_attributes.json", (35_598, 18_357, 296_337), False),
])
def test_real_sequence_datasets(name, marker, counts, has_text):
    if not (SHARED_DATA / name / marker).exists():
        pytest.skip(f"{SHARED_DATA / name} not available")
    data = prepare(load_dataset(name, data_dir=SHARED_DATA, download=False))  # the default preparation
    assert (data.n_users, data.n_items, len(data.interactions)) == counts
    assert data.stats["raw_interactions"] == counts[2]  # nothing dropped
    assert data.has_text == has_text
    assert not data.has_timestamps
    depth = data.catalog["category_path"].map(len)
    assert (depth > 0).mean() > 0.95
    if name == "amazon-toys":
        assert not data.catalog["title"].str.contains("&amp;").any()
    if name == "amazon-sports":
        tree = build_tree(data)
        assert tree.source == "categories" and tree.n_levels == 3 and tree.level_sizes[0] > 10
