"""MovieLens loaders: 100K (``u.data``), 1M/10M (``ratings.dat``), 20M/25M/latest (``ratings.csv``), 1M sequences."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from arborec.data._tables import Dataset
from arborec.data.p5 import read_user_sequences
from arborec.data.tabular import raise_bad_line
from arborec.diagnostics import DataFormatError, logger

__all__ = ["read_movielens", "read_ml100k", "read_movielens_dat", "read_movielens_csv", "read_movielens_sequences",
           "read_ml1m"]

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$")
_PARSER_LINE = re.compile(r"line (\d+)")

_ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                  "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                  "Thriller", "War", "Western"]


def read_ml100k(folder: str | Path, name: str = "ml-100k") -> Dataset:
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
    return Dataset(name, inter, _ml100k_catalog(folder), has_timestamps=True, source=str(folder))


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
    """``"Heat (1995)"`` -> ``("Heat", "1995")``; also ``"Show (2007-)"``; no year -> ``(raw, "")``."""
    raw = raw.strip()
    m = _TITLE_YEAR.match(raw)
    if m is None or not m.group("title"):
        return raw, ""
    return m.group("title"), m.group("year")


def read_movielens(folder: str | Path, name: str | None = None) -> Dataset:
    """Any MovieLens release, recognised by its rating file: ``u.data`` (100K), ``ratings.dat``
    (1M, 10M) or ``ratings.csv`` (20M, 25M, 32M, latest, latest-small)."""
    folder = Path(folder)
    if (folder / "u.data").exists():
        return read_ml100k(folder)
    if (folder / "ratings.dat").exists():
        return read_movielens_dat(folder, name or folder.name)
    if (folder / "ratings.csv").exists():
        return read_movielens_csv(folder, name or folder.name)
    if (folder / "user_sequence.txt").exists() and (folder / "movies.dat").exists():
        return read_movielens_sequences(folder, name or folder.name)
    raise FileNotFoundError(f"{folder}: no MovieLens rating file (u.data, ratings.dat or ratings.csv) and no "
                            "user_sequence.txt + movies.dat")


def read_ml1m(folder: str | Path, name: str = "ml-1m") -> Dataset:
    """MovieLens 1M in either layout: the official ``ratings.dat`` when present (ratings and times),
    else ``user_sequence.txt`` + ``movies.dat`` (see :func:`read_movielens_sequences`)."""
    folder = Path(folder)
    if (folder / "ratings.dat").exists():
        return read_movielens_dat(folder, name)
    return read_movielens_sequences(folder, name)


# --------------------------------------------------------------------------------------------
# 1M as sequences: user_sequence.txt + movies.dat


def read_movielens_sequences(folder: str | Path, name: str = "ml-1m") -> Dataset:
    """MovieLens as per-user sequences: ``user_sequence.txt`` and the official ``movies.dat``.

    This is the MovieLens-1M version sequential-recommendation papers use (6,040 users, the 3,416
    movies with at least 5 ratings, 999,611 events): ``user_sequence.txt`` holds per line the
    original UserID, then the original MovieIDs in time order (integers; no ratings, no
    timestamps, so ``timestamp`` is the position in the line and the split keeps the file order).
    ``movies.dat`` (``MovieID::Title (Year)::Genre|Genre``, Latin-1) gives the catalogue as for
    :func:`read_movielens_dat`: title without the year, ``year``, ``genres`` (space-joined) and
    ``category_path`` = ``[first genre]``. Without ``movies.dat`` the items get empty text.
    """
    folder = Path(folder)
    inter = read_user_sequences(folder / "user_sequence.txt", numeric_ids=True)
    catalog = _movies_dat(folder / "movies.dat") if (folder / "movies.dat").exists() else None
    return Dataset(name, inter, catalog, has_timestamps=False, source=str(folder))


# --------------------------------------------------------------------------------------------
# 1M and 10M: '::'-separated .dat files


def read_movielens_dat(folder: str | Path, name: str = "ml-1m") -> Dataset:
    """MovieLens 1M or 10M: ``ratings.dat``, and ``movies.dat`` / ``tags.dat`` if present.

    ``ratings.dat`` lines are ``UserID::MovieID::Rating::Timestamp`` (unix seconds);
    ``movies.dat`` lines are ``MovieID::Title (Year)::Genre|Genre``; ``tags.dat`` (10M) lines are
    ``UserID::MovieID::Tag::Timestamp``. Text files are read as UTF-8, or as Latin-1 when they
    are not valid UTF-8 (the 1M release is Latin-1).

    The catalog has the title without the year, ``year``, ``genres`` (space-joined),
    ``category_path`` = ``[first genre]``, and ``tags`` (see :func:`read_movielens_csv`).
    """
    folder = Path(folder)
    inter = _read_ratings_dat(folder / "ratings.dat")
    catalog = _movies_dat(folder / "movies.dat") if (folder / "movies.dat").exists() else None
    if (folder / "tags.dat").exists():
        catalog = _add_tags(catalog, _tags_dat(folder / "tags.dat"), folder / "tags.dat")
    return Dataset(name, inter, catalog, has_timestamps=True, source=str(folder))


def _parse_rating_dat(line: str) -> None:
    user, item, rating, ts = line.split("::")
    if not user or not item:
        raise ValueError
    float(rating)
    int(ts)


def _read_ratings_dat(path: Path) -> pd.DataFrame:
    expected = "UserID::MovieID::Rating::Timestamp (a number and an integer unix time)"
    # Ratings are numbers only, so splitting on ':' gives 7 fields with empty ones in between:
    # the fast C parser can read them.
    try:
        df = pd.read_csv(path, sep=":", header=None, names=["user", "s1", "item", "s2", "rating", "s3", "timestamp"],
                         dtype=str, index_col=False, encoding="latin-1")
    except pd.errors.ParserError:
        df = None
    if df is not None:
        rating = pd.to_numeric(df["rating"], errors="coerce")
        ts = pd.to_numeric(df["timestamp"], errors="coerce")
        ok = (df[["s1", "s2", "s3"]].isna().all(axis=None) and not df[["user", "item"]].isna().any(axis=None)
              and not rating.isna().any() and not ts.isna().any() and (ts == np.floor(ts)).all())
        if ok:
            logger.info("%s: read %d ratings", path, len(df))
            return pd.DataFrame({"user": df["user"], "item": df["item"], "rating": rating.astype("float64"),
                                 "timestamp": ts.astype("int64")})
    raise_bad_line(path, expected, _parse_rating_dat, encoding="latin-1")
    raise AssertionError("unreachable")


def _read_text_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()


def _movies_dat(path: Path) -> pd.DataFrame:
    rows = []
    for n, line in enumerate(_read_text_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3 or not parts[0]:
            raise DataFormatError(path, "MovieID::Title (Year)::Genre|Genre", n, line)
        rows.append(_movie_row(parts[0], parts[1], parts[2]))
    logger.info("%s: read %d movies", path, len(rows))
    return pd.DataFrame(rows)


def _movie_row(item: str, raw_title: str, raw_genres: str) -> dict:
    title, year = _split_title_year(raw_title)
    genres = [g for g in raw_genres.split("|") if g and g != "(no genres listed)"]
    return {"item": item, "title": title, "year": year, "genres": " ".join(genres), "category_path": genres[:1]}


def _tags_dat(path: Path) -> pd.DataFrame:
    items, tags = [], []
    for n, line in enumerate(_read_text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            _, item, rest = line.split("::", 2)
            tag, ts = rest.rsplit("::", 1)
            int(ts)
        except ValueError:
            raise DataFormatError(path, "UserID::MovieID::Tag::Timestamp", n, line) from None
        items.append(item)
        tags.append(tag)
    return pd.DataFrame({"item": items, "tag": tags})


# --------------------------------------------------------------------------------------------
# 20M, 25M, 32M, latest, latest-small: CSV files with a header


def read_movielens_csv(folder: str | Path, name: str = "ml-25m") -> Dataset:
    """MovieLens 20M, 25M, 32M, latest or latest-small: ``ratings.csv``, ``movies.csv``, ``tags.csv``.

    ``ratings.csv`` has the header ``userId,movieId,rating,timestamp``; ``movies.csv``
    ``movieId,title,genres`` (CSV-quoted titles, ``|``-separated genres); ``tags.csv``
    ``userId,movieId,tag,timestamp``.

    The catalog has the title without the year, ``year``, ``genres`` (space-joined, without
    ``(no genres listed)``), ``category_path`` = ``[first genre]``, and ``tags``: a movie's
    distinct tags (case-insensitive; the first spelling is kept), most applied first,
    space-joined. Empty tags and tags of movies missing from ``movies.csv`` are counted in the
    log and left out.
    """
    folder = Path(folder)
    inter = _read_ratings_csv(folder / "ratings.csv")
    catalog = _movies_csv(folder / "movies.csv") if (folder / "movies.csv").exists() else None
    tags_path = folder / "tags.csv"
    if tags_path.exists():
        tags = _read_csv_checked(tags_path, ["userId", "movieId", "tag", "timestamp"])
        catalog = _add_tags(catalog, pd.DataFrame({"item": tags["movieId"], "tag": tags["tag"]}), tags_path)
    return Dataset(name, inter, catalog, has_timestamps=True, source=str(folder))


def _read_csv_checked(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        m = _PARSER_LINE.search(str(exc))
        raise DataFormatError(path, f"{len(columns)} comma-separated fields "
                              f"({','.join(columns)})", int(m.group(1)) if m else None, str(exc).strip()) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFormatError(path, f"a header with {','.join(columns)}", 1, ",".join(map(str, df.columns)))
    return df


def _parse_rating_csv(line: str) -> None:
    user, item, rating, ts = line.split(",")
    if not user or not item:
        raise ValueError
    float(rating)
    int(ts)


def _read_ratings_csv(path: Path) -> pd.DataFrame:
    expected = "userId,movieId,rating,timestamp (a number and an integer unix time)"
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError:
        df = None
    if df is not None:
        missing = [c for c in ("userId", "movieId", "rating", "timestamp") if c not in df.columns]
        if missing:
            raise DataFormatError(path, "a header userId,movieId,rating,timestamp", 1, ",".join(map(str, df.columns)))
        rating = pd.to_numeric(df["rating"], errors="coerce")
        ts = pd.to_numeric(df["timestamp"], errors="coerce")
        if (not df[["userId", "movieId"]].isna().any(axis=None) and not rating.isna().any()
                and not ts.isna().any() and (ts == np.floor(ts)).all()):
            logger.info("%s: read %d ratings", path, len(df))
            return pd.DataFrame({"user": df["userId"], "item": df["movieId"], "rating": rating.astype("float64"),
                                 "timestamp": ts.astype("int64")})
    raise_bad_line(path, expected, _parse_rating_csv, skip=1)
    raise AssertionError("unreachable")


def _movies_csv(path: Path) -> pd.DataFrame:
    df = _read_csv_checked(path, ["movieId", "title", "genres"])
    empty = (df["movieId"] == "").to_numpy()
    if empty.any():
        raise DataFormatError(path, "a movieId", int(np.flatnonzero(empty)[0]) + 2, "an empty field")
    rows = [_movie_row(i, t, g) for i, t, g in zip(df["movieId"], df["title"], df["genres"])]
    logger.info("%s: read %d movies", path, len(rows))
    return pd.DataFrame(rows)


def _add_tags(catalog: pd.DataFrame | None, tags: pd.DataFrame, path: Path) -> pd.DataFrame | None:
    """Add a ``tags`` column: each movie's distinct tags, most applied first, space-joined."""
    tags = tags.assign(tag=tags["tag"].fillna("").astype(str).str.strip())
    empty = tags["tag"] == ""
    if empty.any():
        logger.info("%s: %d empty tags left out", path, int(empty.sum()))
        tags = tags[~empty]
    if catalog is None:
        catalog = pd.DataFrame({"item": pd.unique(tags["item"])})
    unknown = ~tags["item"].isin(set(catalog["item"]))
    if unknown.any():
        logger.info("%s: %d tags of movies missing from the movie list left out", path, int(unknown.sum()))
        tags = tags[~unknown]
    tags = tags.assign(key=tags["tag"].str.lower(), order=np.arange(len(tags)))
    per_tag = (tags.groupby(["item", "key"], sort=False)
               .agg(tag=("tag", "first"), count=("tag", "size"), order=("order", "min"))
               .reset_index())
    per_tag = per_tag.assign(neg=-per_tag["count"]).sort_values(["item", "neg", "order"])
    joined = per_tag.groupby("item", sort=False)["tag"].agg(" ".join)
    logger.info("%s: %d tag applications, %d distinct (movie, tag) pairs", path, len(tags), len(per_tag))
    catalog = catalog.copy()
    catalog["tags"] = catalog["item"].map(joined).fillna("").astype(str)
    return catalog
