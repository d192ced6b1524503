"""Loaders of the `data` stage: every format from small files written here, plus the real samples when present."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from arborec.data import (read_amazon_reviews, read_folder, read_mind, read_movielens_csv, read_movielens_dat,
                          read_recbole, read_table)
from arborec.data._registry import REGISTRY, load_dataset
from arborec.diagnostics import DataFormatError, DatasetNotFoundError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding=encoding) as f:
            f.write(text)
    else:
        path.write_bytes(text.encode(encoding))
    return path


def check_canonical_dtypes(ds) -> None:
    inter = ds.interactions
    assert inter["timestamp"].dtype == np.int64
    assert pd.api.types.is_string_dtype(inter["user"]) and pd.api.types.is_string_dtype(inter["item"])
    if "rating" in inter.columns:
        assert inter["rating"].dtype == np.float64
    assert ds.catalog["item"].is_unique
    assert all(isinstance(p, list) for p in ds.catalog["category_path"])


def catalog_row(ds, item: str) -> pd.Series:
    return ds.catalog.set_index("item").loc[item]


def assert_error_at(excinfo, filename: str, line: int) -> None:
    err = excinfo.value
    assert Path(err.path).name == filename
    assert err.line == line
    assert f"{filename}, line {line}: expected" in str(err)


# --------------------------------------------------------------------------------------------
# MovieLens


ML1M_RATINGS = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
ML1M_MOVIES = ("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
               "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
               "2::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n")


@pytest.fixture
def ml1m(tmp_path) -> Path:
    folder = tmp_path / "ml-1m"
    write(folder / "ratings.dat", ML1M_RATINGS)
    write(folder / "movies.dat", ML1M_MOVIES, encoding="latin-1")  # the 1M release is Latin-1
    return folder


def test_movielens_dat_tables(ml1m):
    ds = read_movielens_dat(ml1m, "ml-1m")
    check_canonical_dtypes(ds)
    assert ds.name == "ml-1m" and ds.has_timestamps
    inter = ds.interactions
    assert inter["user"].tolist() == ["1", "1", "2"]
    assert inter["item"].tolist() == ["1193", "661", "1193"]
    assert inter["rating"].tolist() == [5.0, 3.0, 4.0]
    assert inter["timestamp"].tolist() == [978300760, 978302109, 978298413]
    peach = catalog_row(ds, "661")
    assert peach["title"] == "James and the Giant Peach"
    assert peach["year"] == "1996"
    assert peach["genres"] == "Animation Children's Musical"
    assert peach["category_path"] == ["Animation"]
    assert catalog_row(ds, "2")["title"] == "Cité des enfants perdus, La"  # Latin-1 decoded
    assert len(ds.catalog) == 3  # unrated movies stay in the catalog


def test_movielens_dat_tags_10m(ml1m):
    write(ml1m / "tags.dat", "15::1193::classic::1215184630\n20::1193::Classic::1215184631\n"
                             "20::661::roald dahl::1215184632\n21::1193::nurse::1215184633\n"
                             "22::1193::classic::1215184634\n")
    ds = read_movielens_dat(ml1m, "ml-10m")
    assert catalog_row(ds, "1193")["tags"] == "classic nurse"  # most applied first, case-insensitive
    assert catalog_row(ds, "661")["tags"] == "roald dahl"
    assert catalog_row(ds, "2")["tags"] == ""


@pytest.mark.parametrize("bad, line", [
    ("2::661::x::978298413", 3),  # rating not a number
    ("2::661::4", 3),  # missing field
    ("2::661::4::978298413::9", 3),  # extra field
    ("2:661::4::978298413", 3),  # single colon
])
def test_movielens_dat_malformed_rating_line(tmp_path, bad, line):
    write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n" + bad + "\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_movielens_dat(tmp_path)
    assert_error_at(excinfo, "ratings.dat", line)


def test_movielens_dat_malformed_movie_line(ml1m):
    write(ml1m / "movies.dat", "1193::Title (1975)::Drama\n661::no genres field\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_movielens_dat(ml1m)
    assert_error_at(excinfo, "movies.dat", 2)


@pytest.fixture
def ml25m(tmp_path) -> Path:
    folder = tmp_path / "ml-25m"
    write(folder / "ratings.csv", "userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n"
                                  "2,296,4.0,1141415820\n")
    write(folder / "movies.csv", 'movieId,title,genres\n296,Pulp Fiction (1994),Comedy|Crime|Drama|Thriller\n'
                                 '306,"Three Colors: Red (Trois couleurs: Rouge) (1994)",Drama\n'
                                 '999,"American President, The (1995)",(no genres listed)\n'
                                 '1000,Babylon 5,Sci-Fi\n')
    write(folder / "tags.csv", 'userId,movieId,tag,timestamp\n3,296,dark comedy,1439472215\n'
                               '4,296,"quotable, violent",1439472216\n5,296,Dark Comedy,1439472217\n'
                               '6,306,,1439472218\n7,12345,orphan,1439472219\n')
    return folder


def test_movielens_csv_tables(ml25m):
    ds = read_movielens_csv(ml25m, "ml-25m")
    check_canonical_dtypes(ds)
    assert ds.has_timestamps
    assert ds.interactions["rating"].tolist() == [5.0, 3.5, 4.0]
    assert ds.interactions["item"].tolist() == ["296", "306", "296"]
    pulp = catalog_row(ds, "296")
    assert (pulp["title"], pulp["year"]) == ("Pulp Fiction", "1994")
    assert pulp["genres"] == "Comedy Crime Drama Thriller" and pulp["category_path"] == ["Comedy"]
    assert pulp["tags"] == "dark comedy quotable, violent"  # 2 applications of 'dark comedy' come first
    assert catalog_row(ds, "306")["title"] == "Three Colors: Red (Trois couleurs: Rouge)"
    president = catalog_row(ds, "999")
    assert president["title"] == "American President, The"
    assert president["genres"] == "" and president["category_path"] == []
    assert (catalog_row(ds, "1000")["title"], catalog_row(ds, "1000")["year"]) == ("Babylon 5", "")
    assert "12345" not in set(ds.catalog["item"])  # tags of unknown movies do not invent items


def test_movielens_csv_malformed(ml25m):
    write(ml25m / "ratings.csv", "userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,,1147868817\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_movielens_csv(ml25m)
    assert_error_at(excinfo, "ratings.csv", 3)
    write(ml25m / "ratings.csv", "user,movie,rating,timestamp\n1,296,5.0,1147880044\n")
    with pytest.raises(DataFormatError, match=r"ratings.csv, line 1: expected a header userId"):
        read_movielens_csv(ml25m)


def test_movielens_csv_malformed_movies(ml25m):
    write(ml25m / "movies.csv", "movieId,title,genres\n296,Pulp Fiction (1994),Crime\n306,Red,Drama,extra\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_movielens_csv(ml25m)
    assert_error_at(excinfo, "movies.csv", 3)


# --------------------------------------------------------------------------------------------
# Amazon 2014 / 2018

REVIEWS_2014 = [
    {"reviewerID": "U1", "asin": "B001", "reviewerName": "a", "helpful": [0, 0], "reviewText": "nice",
     "overall": 5.0, "summary": "s", "unixReviewTime": 1360000000, "reviewTime": "02 4, 2013"},
    {"reviewerID": "U1", "asin": "B002", "overall": 3.0, "unixReviewTime": 1370000000},
    {"reviewerID": "U2", "asin": "B001", "overall": 4.0, "unixReviewTime": 1350000000},
]
META_2014 = [  # Python dict literals, as in the 2014 files
    "{'asin': 'B001', 'title': 'Rose Water Toner', 'brand': 'Acme', 'description': 'A gentle toner.', "
    "'categories': [['Beauty', 'Skin Care', 'Face', 'Toners & Astringents'], ['Health & Personal Care']], "
    "'salesRank': {'Beauty': 1234}}",
    "{'asin': 'B002', 'description': [\"Women's\", 'shampoo'], 'categories': [['Beauty', 'Hair Care']]}",
    "{'asin': 'B999', 'title': 'never reviewed', 'categories': [['Beauty']]}",
]


@pytest.fixture
def amazon2014(tmp_path) -> Path:
    folder = tmp_path / "beauty"
    write(folder / "reviews_Beauty_5.json.gz", "".join(json.dumps(r) + "\n" for r in REVIEWS_2014))
    write(folder / "meta_Beauty.json.gz", "\n".join(META_2014) + "\n")
    return folder


def test_amazon_2014_gzipped(amazon2014):
    ds = read_amazon_reviews(amazon2014)
    check_canonical_dtypes(ds)
    assert ds.name == "amazon-beauty" and ds.has_timestamps
    inter = ds.interactions
    assert inter["user"].tolist() == ["U1", "U1", "U2"]
    assert inter["timestamp"].tolist() == [1360000000, 1370000000, 1350000000]
    assert inter["rating"].tolist() == [5.0, 3.0, 4.0]
    toner = catalog_row(ds, "B001")
    assert toner["title"] == "Rose Water Toner" and toner["brand"] == "Acme"
    assert toner["description"] == "A gentle toner."
    assert toner["category_path"] == ["Beauty", "Skin Care", "Face", "Toners & Astringents"]  # first path only
    shampoo = catalog_row(ds, "B002")
    assert shampoo["description"] == "Women's shampoo" and shampoo["title"] == ""
    assert sorted(ds.catalog["item"]) == ["B001", "B002"]  # metadata of unreviewed items is skipped


def test_amazon_2018_plain(tmp_path):
    reviews = [{"overall": 5.0, "verified": True, "reviewerID": "U9", "asin": "A1", "unixReviewTime": 1500000000},
               {"overall": 2.0, "verified": True, "reviewerID": "U9", "asin": "A2", "unixReviewTime": 1500000100}]
    meta = [{"category": ["All Beauty", "Hair &amp; Scalp"], "title": "Comb", "brand": "Goody",
             "description": ["Wide tooth.", "Durable."], "asin": "A1"},
            {"title": "Brush", "asin": "A2"}]
    write(tmp_path / "All_Beauty_5.json", "".join(json.dumps(r) + "\n" for r in reviews))
    write(tmp_path / "meta_All_Beauty.json", "".join(json.dumps(m) + "\n" for m in meta))
    ds = read_amazon_reviews(tmp_path / "All_Beauty_5.json")
    assert ds.name == "amazon2018-all-beauty"
    comb = catalog_row(ds, "A1")
    assert comb["category_path"] == ["All Beauty", "Hair & Scalp"]
    assert comb["description"] == "Wide tooth. Durable."
    assert catalog_row(ds, "A2")["category_path"] == []
    assert ds.interactions["item"].tolist() == ["A1", "A2"]


def test_amazon_malformed_review_line(amazon2014):
    lines = [json.dumps(r) for r in REVIEWS_2014]
    lines[1] = '{"reviewerID": "U1", "asin": "B002", "overall": 3.0'  # truncated JSON
    write(amazon2014 / "reviews_Beauty_5.json.gz", "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_amazon_reviews(amazon2014)
    assert_error_at(excinfo, "reviews_Beauty_5.json.gz", 2)
    lines[1] = '{"reviewerID": "U1", "asin": "B002", "overall": 3.0}'  # no unixReviewTime
    write(amazon2014 / "reviews_Beauty_5.json.gz", "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="unixReviewTime") as excinfo:
        read_amazon_reviews(amazon2014)
    assert excinfo.value.line == 2


def test_amazon_malformed_meta_line(amazon2014):
    write(amazon2014 / "meta_Beauty.json.gz", META_2014[0] + "\n{'asin': 'B002', 'title': \n")
    with pytest.raises(DataFormatError) as excinfo:
        read_amazon_reviews(amazon2014)
    assert_error_at(excinfo, "meta_Beauty.json.gz", 2)


# --------------------------------------------------------------------------------------------
# MIND

NEWS = ("N1\tsports\tfootball_nfl\tBig game tonight\tThe teams meet.\thttps://x/1\t[]\t[]\n"
        "N2\tnews\tnewsus\tElection news\t\thttps://x/2\t[]\t[]\n"
        "N3\tlifestyle\tlifestyleroyals\tRoyal visit\tA visit.\thttps://x/3\t[]\t[]\n"
        "N4\tsports\tbasketball_nba\tTrade rumours\tRumours.\thttps://x/4\t[]\t[]\n")
BEHAVIORS = ("1\tU1\t11/11/2019 9:05:58 AM\tN3 N2\tN1-1 N4-0\n"
             "2\tU2\t11/11/2019 1:00:00 PM\t\tN4-1 N2-1 N1-0\n"
             "3\tU1\t11/12/2019 10:00:00 AM\tN3 N2 N4\tN2-0 N1-1\n")


def test_mind_clicks_and_history(tmp_path):
    write(tmp_path / "news.tsv", NEWS)
    write(tmp_path / "behaviors.tsv", BEHAVIORS)
    ds = read_mind(tmp_path, "mind-test")
    check_canonical_dtypes(ds)
    assert ds.has_timestamps
    t1 = int(pd.Timestamp("2019-11-11 09:05:58").timestamp())
    t2 = int(pd.Timestamp("2019-11-11 13:00:00").timestamp())
    t3 = int(pd.Timestamp("2019-11-12 10:00:00").timestamp())
    u1 = ds.interactions[ds.interactions["user"] == "U1"]
    # history N3, N2 (+ N4 from the later impression, deduplicated) before the first impression
    assert u1["item"].tolist() == ["N3", "N2", "N4", "N1", "N1"]
    assert u1["timestamp"].tolist() == [t1 - 3, t1 - 2, t1 - 1, t1, t3]
    u2 = ds.interactions[ds.interactions["user"] == "U2"]
    assert u2["item"].tolist() == ["N4", "N2"] and u2["timestamp"].tolist() == [t2, t2]  # clicks only
    assert ds.extra["history_events"] == 3
    assert (np.diff(ds.interactions["timestamp"]) >= 0).all()
    sports = catalog_row(ds, "N1")
    assert sports["category_path"] == ["sports", "football_nfl"]
    assert (sports["title"], sports["description"]) == ("Big game tonight", "The teams meet.")
    assert catalog_row(ds, "N2")["description"] == ""


def test_mind_split_folders(tmp_path):
    write(tmp_path / "train" / "news.tsv", NEWS)
    write(tmp_path / "train" / "behaviors.tsv", BEHAVIORS)
    write(tmp_path / "dev" / "news.tsv", NEWS.splitlines(keepends=True)[0])
    write(tmp_path / "dev" / "behaviors.tsv", "9\tU3\t11/15/2019 8:00:00 AM\tN1\tN1-0 N3-1 N2\n")
    ds = read_mind(tmp_path)
    assert ds.interactions["user"].nunique() == 3
    u3 = ds.interactions[ds.interactions["user"] == "U3"]
    assert u3["item"].tolist() == ["N1", "N3"]  # the unlabelled 'N2' is not an event
    assert len(ds.catalog) == 4  # news listed in both splits are merged


@pytest.mark.parametrize("behaviors, line", [
    (BEHAVIORS + "4\tU3\t11/13/2019 9:00:00 AM\tN1\tN2-7\n", 4),
    (BEHAVIORS + "4\tU3\tyesterday\tN1\tN2-1\n", 4),
    ("1\tU1\t11/11/2019 9:05:58 AM\tN3 N2\n", 1),
])
def test_mind_malformed_behaviors(tmp_path, behaviors, line):
    write(tmp_path / "news.tsv", NEWS)
    write(tmp_path / "behaviors.tsv", behaviors)
    with pytest.raises(DataFormatError) as excinfo:
        read_mind(tmp_path)
    assert_error_at(excinfo, "behaviors.tsv", line)


def test_mind_malformed_news(tmp_path):
    write(tmp_path / "news.tsv", NEWS + "N5\tsports\tonly four fields\n")
    write(tmp_path / "behaviors.tsv", BEHAVIORS)
    with pytest.raises(DataFormatError) as excinfo:
        read_mind(tmp_path)
    assert_error_at(excinfo, "news.tsv", 5)


# --------------------------------------------------------------------------------------------
# RecBole atomic files


def test_recbole_with_timestamps(tmp_path):
    write(tmp_path / "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                  "u1\ti1\t4\t881250949\nu1\ti2\t3.5\t881250950.7\nu2\ti1\t1\t881250000\n")
    write(tmp_path / "toy.item", 'item_id:token\ttitle:token\tcategories:token_seq\tbrand:token\n'
                                 'i1\t"Tab\tTitle"\t\'Beauty\', \'Makeup &amp; More\'\tAcme\n'
                                 'i2\tPlain\t\tOther\n')
    write(tmp_path / "toy.user", "user_id:token\tage:token\nu1\t24\nu2\t53\n")
    ds = read_recbole(tmp_path)
    check_canonical_dtypes(ds)
    assert ds.name == "toy" and ds.has_timestamps
    assert ds.interactions["timestamp"].tolist() == [881250949, 881250950, 881250000]
    assert ds.interactions["rating"].tolist() == [4.0, 3.5, 1.0]
    i1 = catalog_row(ds, "i1")
    assert i1["title"] == "Tab\tTitle"  # CSV-quoted field holding a tab
    assert i1["category_path"] == ["Beauty", "Makeup & More"] and i1["brand"] == "Acme"
    assert catalog_row(ds, "i2")["category_path"] == []
    assert ds.extra["users"]["age"].tolist() == ["24", "53"]


def test_recbole_without_timestamps_keeps_file_order(tmp_path):
    write(tmp_path / "seq.inter", "user_id:token\titem_id:token\nu2\ti9\nu1\ti3\nu2\ti1\n")
    ds = read_recbole(tmp_path, "seq")
    assert not ds.has_timestamps
    assert ds.interactions["timestamp"].tolist() == [0, 1, 2]
    assert ds.interactions["item"].tolist() == ["i9", "i3", "i1"]
    assert "rating" not in ds.interactions.columns


def test_recbole_movielens_item_genres(tmp_path):
    write(tmp_path / "ml.inter", "user_id:token\titem_id:token\tlabel:float\n1\t1\t1\n")
    write(tmp_path / "ml.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                "1\tToy Story\t1995\tAnimation Children's Comedy\n")
    row = catalog_row(read_recbole(tmp_path), "1")
    assert (row["title"], row["year"], row["category_path"]) == ("Toy Story", "1995", ["Animation"])


@pytest.mark.parametrize("content, line", [
    ("user_id:token\titem_id:token\trating:float\nu1\ti1\t4\nu1\ti2\tfour\n", 3),
    ("user_id:token\titem_id:token\nu1\ti1\nu1\ti2\textra\n", 3),
    ("user_id\titem_id\nu1\ti1\n", 1),  # header without types
    ("uid:token\tthing:token\nu1\ti1\n", 1),  # no item field
])
def test_recbole_malformed(tmp_path, content, line):
    write(tmp_path / "bad.inter", content)
    with pytest.raises(DataFormatError) as excinfo:
        read_recbole(tmp_path)
    assert_error_at(excinfo, "bad.inter", line)


# --------------------------------------------------------------------------------------------
# Any CSV / Parquet with a column mapping


def test_read_table_csv_sniffed_with_dates(tmp_path):
    inter = write(tmp_path / "events.csv", "customer;product;when;stars\nc1;p1;2021-03-01 10:00:00;5\n"
                                           "c1;p2;2021-03-02 10:00:00;3\nc2;p1;2021-03-01 12:30:00;4\n")
    cat = write(tmp_path / "products.csv", "sku;name;path;maker\np1;Red Shoe;Shoes > Women > Heels;Acme\n"
                                           "p2;Blue Hat;Hats;\n")
    ds = read_table(inter, user_col="customer", item_col="product", time_col="when", rating_col="stars",
                    catalog_path=cat, item_id_col="sku", title_col="name", category_col="path",
                    text_cols={"brand": "maker"})
    check_canonical_dtypes(ds)
    assert ds.name == "events" and ds.has_timestamps
    assert ds.interactions["timestamp"].tolist() == [1614592800, 1614679200, 1614601800]
    assert ds.interactions["rating"].tolist() == [5.0, 3.0, 4.0]
    shoe = catalog_row(ds, "p1")
    assert shoe["title"] == "Red Shoe" and shoe["category_path"] == ["Shoes", "Women", "Heels"]
    assert shoe["brand"] == "Acme" and catalog_row(ds, "p2")["brand"] == ""


def test_read_table_parquet_lists_and_no_time(tmp_path):
    pd.DataFrame({"u": ["a", "b", "a"], "i": [10, 11, 12], "title": ["x", "y", "z"],
                  "cats": [["A", "B"], ["A"], []]}).to_parquet(tmp_path / "t.parquet")
    ds = read_table(tmp_path / "t.parquet", user_col="u", item_col="i", category_col="cats")
    assert not ds.has_timestamps
    assert ds.interactions["timestamp"].tolist() == [0, 1, 2]
    assert ds.interactions["item"].tolist() == ["10", "11", "12"]
    assert catalog_row(ds, "10")["category_path"] == ["A", "B"]  # catalog from the interaction table
    assert catalog_row(ds, "11")["title"] == "y"


def test_read_table_gzipped_tsv_unix_time(tmp_path):
    path = write(tmp_path / "log.tsv.gz", "user_id\titem_id\tts\nu1\ti1\t100\nu1\ti2\t90.5\n")
    ds = read_table(path, time_col="ts")
    assert ds.interactions["timestamp"].tolist() == [100, 90]


def test_read_table_errors(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,t\nu1,i1,2020-01-01\n,i2,2020-01-02\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_table(path)
    assert_error_at(excinfo, "e.csv", 3)
    with pytest.raises(DataFormatError, match=r"e.csv, line 1: expected column\(s\) \['stamp'\]"):
        read_table(path, time_col="stamp")
    path = write(tmp_path / "f.csv", "user_id,item_id,t\nu1,i1,2020-01-01\nu2,i2,not a date\n")
    with pytest.raises(DataFormatError) as excinfo:
        read_table(path, time_col="t")
    assert_error_at(excinfo, "f.csv", 3)


# --------------------------------------------------------------------------------------------
# Folder auto-detection and the registry


def test_read_folder_recognises_every_layout(tmp_path, ml1m, ml25m, amazon2014):
    write(tmp_path / "ml100" / "u.data", "1\t2\t3\t881250949\n")
    write(tmp_path / "p5" / "user_sequence.txt", "U1 I1 I2\n")
    write(tmp_path / "rb" / "x.inter", "user_id:token\titem_id:token\nu\ti\n")
    write(tmp_path / "mind" / "news.tsv", NEWS)
    write(tmp_path / "mind" / "behaviors.tsv", BEHAVIORS)
    expected = {
        tmp_path / "ml100": ("ml-100k", 1), ml1m: ("ml-1m", 3), ml25m: ("ml-25m", 3),
        tmp_path / "p5": ("p5", 2), amazon2014: ("amazon-beauty", 3), tmp_path / "rb": ("x", 1),
        tmp_path / "mind": ("mind", 7),
    }
    for folder, (name, n) in expected.items():
        ds = read_folder(folder)
        assert (ds.name, len(ds.interactions)) == (name, n), folder
    assert read_folder(ml1m, name="custom").name == "custom"
    assert load_dataset(str(ml25m)).name == "ml-25m"  # a folder path works too
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no known dataset layout"):
        read_folder(tmp_path / "empty")


def test_named_dataset_found_in_data_dir(tmp_path, ml1m, monkeypatch):
    monkeypatch.setenv("ARBOREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ARBOREC_DATA_DIR", raising=False)
    ds = load_dataset("ml-1m", data_dir=ml1m.parent, download=False)
    assert ds.name == "ml-1m" and len(ds.interactions) == 3
    # a folder of 2014 review files answers to the Amazon Beauty name too
    beauty = tmp_path / "amazon-beauty"
    write(beauty / "reviews_Beauty_5.json", "".join(json.dumps(r) + "\n" for r in REVIEWS_2014))
    ds = load_dataset("beauty", data_dir=tmp_path, download=False)
    assert ds.name == "amazon-beauty" and ds.has_timestamps


def test_amazon_module_keeps_recbole_reader():
    from arborec.data import amazon, recbole
    assert amazon.read_recbole_item_catalog is recbole.read_recbole_item_catalog


def test_registry_names():
    names = {s.name for s in REGISTRY.values()}
    assert {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small", "ml-latest", "amazon-beauty",
            "mind-small"} <= names
    assert REGISTRY["beauty"] is REGISTRY["amazon-beauty"]


# --------------------------------------------------------------------------------------------
# The real samples beside the repository (skipped when absent)


@pytest.mark.realdata
def test_real_ml100k():
    folder = SHARED_DATA / "ml-100k"
    if not (folder / "u.data").exists():
        pytest.skip(f"{folder} not available")
    ds = read_folder(folder)
    assert ds.name == "ml-100k"
    assert ds.interactions["user"].nunique() == 943
    assert ds.interactions["item"].nunique() == 1682
    assert len(ds.interactions) == 100_000
    assert len(ds.catalog) == 1682
    toy = catalog_row(ds, "1")
    assert toy["title"] == "Toy Story" and toy["category_path"] == ["Animation"]
    recbole = read_recbole(folder)  # the same data in RecBole atomic files
    assert len(recbole.interactions) == 100_000 and recbole.has_timestamps
    assert len(recbole.extra["users"]) == 943


@pytest.mark.realdata
def test_real_amazon_beauty():
    folder = SHARED_DATA / "amazon-beauty"
    if not (folder / "user_sequence.txt").exists():
        pytest.skip(f"{folder} not available")
    ds = load_dataset("amazon-beauty", data_dir=SHARED_DATA, download=False)
    assert ds.name == "amazon-beauty" and not ds.has_timestamps
    assert ds.interactions["user"].nunique() == 22_363
    assert ds.interactions["item"].nunique() == 12_101
    assert len(ds.interactions) == 198_502
    starts_with_beauty = np.mean([p[:1] == ["Beauty"] for p in ds.catalog["category_path"]])
    assert starts_with_beauty > 0.9
    depth = ds.catalog["category_path"].map(len)
    assert depth[depth > 0].between(2, 6).all()
