"""One's own event table as --data FILE: columns found by their usual names or named, errors that say where."""

import pandas as pd
import pytest

from arborec.data import guess_columns, load_prepared, read_table_file
from arborec.diagnostics import ConfigError, DataFormatError


def write_shop(path, user="customer", item="sku", title="product_name", n_users=12):
    """A small shop export: every user buys 6 of 10 products, a minute apart, with their titles and categories."""
    rows = []
    for u in range(n_users):
        for j in range(6):
            i = (u + 2 * j) % 10
            rows.append({user: f"c{u}", item: f"P{i}", "ts": 1_700_000_000 + 3600 * u + 60 * j,
                         title: f"Product {i}", "category": "Shoes > Hiking" if i % 2 else "Bags > Backpacks"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return rows


def test_usual_names_are_found_whatever_their_case_and_separators():
    found = guess_columns(["UserId", "Product ID", "event-time", "Title", "Category Path", "price"])
    assert found == {"user": "UserId", "item": "Product ID", "time": "event-time", "title": "Title",
                     "category": "Category Path"}
    # a given mapping wins, and a column plays one role only
    found = guess_columns(["user", "item", "name", "title"], {"title": "name", "item": "user", "user": "item"})
    assert found["title"] == "name" and found["item"] == "user" and found["user"] == "item"


def test_a_shop_export_reads_without_a_mapping(tmp_path):
    rows = write_shop(tmp_path / "events.csv")
    ds = read_table_file(tmp_path / "events.csv")
    assert len(ds.interactions) == len(rows) and ds.has_timestamps
    assert ds.interactions["user"].nunique() == 12
    catalog = ds.catalog.set_index("item")
    assert catalog.loc["P3", "title"] == "Product 3"
    assert list(catalog.loc["P3", "category_path"]) == ["Shoes", "Hiking"]


def test_unusual_names_are_named_with_columns_and_a_missing_one_says_how(tmp_path):
    write_shop(tmp_path / "events.csv", user="buyer_no", item="article_no", title="label")
    with pytest.raises(DataFormatError, match=r"events\.csv, line 1: expected a user column.*--columns user="):
        read_table_file(tmp_path / "events.csv")
    with pytest.raises(DataFormatError, match=r"line 1: expected the column\(s\) --columns names \(item=article\)"):
        read_table_file(tmp_path / "events.csv", columns={"user": "buyer_no", "item": "article"})
    ds = read_table_file(tmp_path / "events.csv", columns={"user": "buyer_no", "item": "article_no", "title": "label"})
    assert ds.interactions["item"].nunique() == 10
    assert ds.catalog.set_index("item").loc["P4", "title"] == "Product 4"


def test_a_separate_catalogue_gives_the_item_text(tmp_path):
    events = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "timestamp": [1, 2, 3]})
    events.to_parquet(tmp_path / "events.parquet")
    items = pd.DataFrame({"item_id": ["x", "y"], "name": ["Trail shoe", "Day pack"], "maker": ["Acme", "Bolt"]})
    items.to_csv(tmp_path / "items.csv", index=False)
    ds = read_table_file(tmp_path / "events.parquet", catalog=tmp_path / "items.csv")
    catalog = ds.catalog.set_index("item")
    assert catalog.loc["y", "title"] == "Day pack" and catalog.loc["x", "brand"] == "Acme"


def test_the_command_line_reads_a_table_file_and_the_mapping_keys_the_cache(tmp_path, monkeypatch, capsys):
    from arborec.cli import main

    monkeypatch.setenv("ARBOREC_CACHE_DIR", str(tmp_path / "cache"))
    write_shop(tmp_path / "shop.csv", title="label")
    assert main(["-q", "prepare", "--data", str(tmp_path / "shop.csv"), "--user-core", "2", "--item-core", "2"]) == 0
    assert "n_users" in capsys.readouterr().out
    plain = load_prepared(str(tmp_path / "shop.csv"))
    named = load_prepared(str(tmp_path / "shop.csv"), columns={"title": "label"})
    assert "title" not in plain.catalog.columns or (plain.catalog["title"].fillna("") == "").all()
    assert set(named.catalog["title"]) == {f"Product {i}" for i in range(10)}  # not the cached unnamed read
    assert main(["-q", "prepare", "--data", str(tmp_path / "shop.csv"), "--columns", "usr=customer"]) == 1
    assert "unknown role 'usr'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not ROLE=COLUMN"):
        from arborec.data.table_file import parse_columns
        parse_columns("user")
