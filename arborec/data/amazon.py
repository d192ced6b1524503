"""Amazon review loaders: the P5 ``user_sequence.txt`` layout (with a RecBole ``.item`` catalog)."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pandas as pd

from arborec.data._tables import Dataset
from arborec.diagnostics import DataFormatError


def read_p5_sequences(folder: str | Path, name: str = "amazon-beauty") -> Dataset:
    """``user_sequence.txt``: a user id, then that user's item ids in time order, space-separated.

    The file has no timestamps: ``timestamp`` is the position in the user's line, so the split
    keeps the file order. A RecBole atomic ``*.item`` file next to it, if any, gives the catalog.
    """
    folder = Path(folder)
    path = folder / "user_sequence.txt"
    users, items, order = [], [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DataFormatError(path, "a user id followed by at least one item id", n, line.strip())
            u = parts[0]
            for pos, it in enumerate(parts[1:]):
                users.append(u)
                items.append(it)
                order.append(pos)
    inter = pd.DataFrame({"user": users, "item": items, "timestamp": order})
    item_files = sorted(folder.glob("*.item"))
    catalog = read_recbole_item_catalog(item_files[0]) if item_files else None
    return Dataset(name, inter, catalog, has_timestamps=False, source=str(folder))


def read_recbole_item_catalog(path: str | Path) -> pd.DataFrame:
    """A RecBole atomic ``.item`` file (tab-separated, CSV-quoted) as a catalog.

    Columns are matched by name: the first ``*_id`` column is the item, ``title``/``movie_title``
    the title, ``categories`` (a Python-like list of quoted names) the category path, and
    ``brand``, ``description``, ``release_year``/``year``, ``class``/``genres`` the text fields.
    """
    path = Path(path)
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL)
    df.columns = [c.split(":")[0] for c in df.columns]
    id_cols = [c for c in df.columns if c.endswith("_id")]
    if not id_cols:
        raise DataFormatError(path, "a header with an item id column such as 'item_id:token'", 1, ",".join(df.columns))
    out = pd.DataFrame({"item": df[id_cols[0]]})
    for src, dst in (("title", "title"), ("movie_title", "title"), ("brand", "brand"),
                     ("description", "description"), ("release_year", "year"), ("year", "year"),
                     ("class", "genres"), ("genres", "genres")):
        if src in df.columns and dst not in out.columns:
            out[dst] = df[src].to_numpy()
    if "categories" in df.columns:
        out["category_path"] = [parse_category_list(s, path, i + 2) for i, s in enumerate(df["categories"])]
    return out


def parse_category_list(text: str, path, line: int) -> list[str]:
    """``'Beauty', 'Makeup', "Women's"`` -> ``['Beauty', 'Makeup', "Women's"]``."""
    text = text.strip()
    if not text:
        return []
    try:
        value = ast.literal_eval(f"[{text}]" if not text.startswith("[") else text)
    except (ValueError, SyntaxError):
        raise DataFormatError(path, "a comma-separated list of quoted category names", line, text) from None
    if value and isinstance(value[0], (list, tuple)):  # a list of paths: take the first
        value = value[0]
    return [str(v).replace("&amp;", "&") for v in value]
