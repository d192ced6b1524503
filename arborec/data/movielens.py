"""MovieLens loaders: 100K (u.data + u.item)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from arborec.data._tables import Dataset
from arborec.diagnostics import DataFormatError

_ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                  "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                  "Thriller", "War", "Western"]


def read_ml100k(folder: str | Path) -> Dataset:
    """MovieLens 100K from ``u.data`` (user, item, rating, unix time; tabs) and ``u.item`` if present.

    When ``u.item`` is absent but RecBole's ``ml-100k.item`` is there, titles and genres come
    from it instead.
    """
    folder = Path(folder)
    path = folder / "u.data"
    rows = []
    with open(path, encoding="latin-1") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                raise DataFormatError(path, "4 tab-separated fields (user, item, rating, timestamp)", n, line.strip())
            try:
                rows.append((parts[0], parts[1], float(parts[2]), int(parts[3])))
            except ValueError:
                raise DataFormatError(path, "a numeric rating and an integer unix timestamp", n, line.strip()) from None
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return Dataset("ml-100k", inter, _ml100k_catalog(folder), has_timestamps=True, source=str(folder))


def _ml100k_catalog(folder: Path) -> pd.DataFrame:
    uitem = folder / "u.item"
    if uitem.exists():
        rows = []
        with open(uitem, encoding="latin-1") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                parts = line.rstrip("\n").split("|")
                if len(parts) != 24:
                    raise DataFormatError(uitem, "24 '|'-separated fields (id, title, date, url, 19 genre flags)",
                                          n, line.strip())
                title, year = _split_title_year(parts[1])
                genres = [g for g, flag in zip(_ML100K_GENRES, parts[5:]) if flag == "1"]
                rows.append({"item": parts[0], "title": title, "year": year, "genres": " ".join(genres),
                             "category_path": genres[:1]})
        return pd.DataFrame(rows)
    recbole_item = folder / "ml-100k.item"
    if recbole_item.exists():
        df = pd.read_csv(recbole_item, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)
        df.columns = [c.split(":")[0] for c in df.columns]
        genres = df.get("class", pd.Series([""] * len(df)))
        return pd.DataFrame({"item": df["item_id"], "title": df.get("movie_title", ""),
                             "year": df.get("release_year", ""), "genres": genres,
                             "category_path": [g.split()[:1] for g in genres]})
    return pd.DataFrame({"item": pd.Series(dtype=str)})


def _split_title_year(raw: str) -> tuple[str, str]:
    raw = raw.strip()
    if raw.endswith(")") and raw[-6:-5] == "(" and raw[-5:-1].isdigit():
        return raw[:-6].strip(), raw[-5:-1]
    return raw, ""
