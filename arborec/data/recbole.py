"""RecBole atomic files: ``<name>.inter`` interactions, with optional ``<name>.item`` and ``<name>.user`` tables."""

from __future__ import annotations

import ast
import csv
import html
from pathlib import Path

import numpy as np
import pandas as pd

from arborec.data._tables import Dataset
from arborec.data.tabular import raise_bad_line
from arborec.diagnostics import DataFormatError, logger

#: Accepted names of the interaction fields, in order of preference.
_USER_FIELDS = ("user_id", "uid", "user")
_ITEM_FIELDS = ("item_id", "iid", "item", "movie_id", "business_id", "news_id")
_RATING_FIELDS = ("rating", "score", "overall")
_TIME_FIELDS = ("timestamp", "time", "unixReviewTime")


def read_recbole(folder: str | Path, name: str | None = None) -> Dataset:
    """Read RecBole atomic files ``<name>.inter`` (required), ``<name>.item`` and ``<name>.user``.

    The ``.inter`` file is tab-separated with a ``field:type`` header. Its user and item fields
    (``user_id`` / ``item_id``, or a few common alternatives), and the optional ``rating`` and
    ``timestamp`` fields, become the interactions. Without a timestamp field, ``timestamp`` is
    the line order and ``has_timestamps`` is False. Float timestamps are truncated to seconds.

    The ``.item`` file, if any, becomes the catalog (see :func:`read_recbole_item_catalog`);
    the ``.user`` file, if any, is kept as a DataFrame in ``Dataset.extra["users"]``.

    Parameters
    ----------
    folder : path
        The folder holding the files.
    name : str, optional
        The atomic file stem; default: the folder's only ``*.inter`` file (or the folder name).
    """
    folder = Path(folder)
    inter_path = _atomic_file(folder, name, "inter")
    stem = inter_path.name[: -len(".inter")]
    inter, has_time = read_recbole_inter(inter_path)
    item_path = folder / f"{stem}.item"
    catalog = read_recbole_item_catalog(item_path) if item_path.exists() else None
    extra = {}
    user_path = folder / f"{stem}.user"
    if user_path.exists():
        extra["users"] = _read_atomic(user_path)
    return Dataset(name or stem, inter, catalog, has_timestamps=has_time, source=str(folder), extra=extra)


def _atomic_file(folder: Path, name: str | None, kind: str) -> Path:
    if name and (folder / f"{name}.{kind}").exists():
        return folder / f"{name}.{kind}"
    found = sorted(folder.glob(f"*.{kind}"))
    if len(found) == 1 or (found and not name):
        if len(found) > 1:
            logger.info("%s: several .%s files; reading %s", folder, kind, found[0].name)
        return found[0]
    if (folder / f"{folder.name}.{kind}").exists():
        return folder / f"{folder.name}.{kind}"
    raise FileNotFoundError(f"{folder}: no {name or '<name>'}.{kind} file")


def _read_atomic(path: Path, quoting: int = csv.QUOTE_MINIMAL) -> pd.DataFrame:
    """A RecBole atomic file as strings, with the ``:type`` suffix removed from column names."""
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=quoting)
    except pd.errors.ParserError:
        with open(path, encoding="utf-8") as f:
            n_fields = len(f.readline().rstrip("\r\n").split("\t"))
        raise_bad_line(path, f"{n_fields} tab-separated fields, as in the header",
                       lambda s: _check_count(s.split("\t"), n_fields), skip=1)
        raise
    untyped = [c for c in df.columns if ":" not in str(c)]
    if untyped:
        raise DataFormatError(path, "a header of 'field:type' names (e.g. 'user_id:token')", 1,
                              "\t".join(map(str, df.columns)))
    df.columns = [str(c).split(":")[0] for c in df.columns]
    return df


def _check_count(parts: list[str], n: int) -> None:
    if len(parts) != n:
        raise ValueError


def read_recbole_inter(path: str | Path) -> tuple[pd.DataFrame, bool]:
    """A ``.inter`` file as an interaction table, and whether it had a timestamp field."""
    path = Path(path)
    df = _read_atomic(path, quoting=csv.QUOTE_NONE)
    user, item = _pick(df, _USER_FIELDS), _pick(df, _ITEM_FIELDS)
    if user is None or item is None:
        raise DataFormatError(path, "user_id and item_id fields in the header", 1, "\t".join(df.columns))
    rating, time = _pick(df, _RATING_FIELDS), _pick(df, _TIME_FIELDS)
    for col in (user, item):
        empty = (df[col].isna() | (df[col] == "")).to_numpy()
        if empty.any():
            raise DataFormatError(path, f"a value for {col!r}", int(np.flatnonzero(empty)[0]) + 2, "an empty field")
    out = pd.DataFrame({"user": df[user].to_numpy(), "item": df[item].to_numpy()})
    if time is not None:
        out["timestamp"] = np.floor(_numeric(path, df, time)).astype("int64")
    else:
        out["timestamp"] = np.arange(len(df), dtype="int64")
        logger.info("%s: no timestamp field; the file order is the time order", path)
    if rating is not None:
        out["rating"] = _numeric(path, df, rating)
    logger.info("%s: read %d interactions", path, len(out))
    return out, time is not None


def _pick(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in df.columns), None)


def _numeric(path: Path, df: pd.DataFrame, col: str) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(path, f"a number in field {col!r}", row + 2, str(df[col].iloc[row]))
    return values.to_numpy().astype("float64")


def read_recbole_item_catalog(path: str | Path) -> pd.DataFrame:
    """A RecBole atomic ``.item`` file (tab-separated, CSV-quoted) as a catalog.

    Columns are matched by name: the first ``*_id`` column is the item, ``title``/``movie_title``
    the title, ``categories`` (a Python-like list of quoted names) the category path, and
    ``brand``, ``description``, ``release_year``/``year``, ``class``/``genres`` the text fields.
    Without ``categories``, the first genre (if any) is the category path, as for MovieLens.
    """
    path = Path(path)
    df = _read_atomic(path)
    id_cols = [c for c in df.columns if c.endswith("_id")]
    if not id_cols:
        raise DataFormatError(path, "a header with an item id column such as 'item_id:token'", 1, "\t".join(df.columns))
    out = pd.DataFrame({"item": df[id_cols[0]]})
    for src, dst in (("title", "title"), ("movie_title", "title"), ("brand", "brand"),
                     ("description", "description"), ("release_year", "year"), ("year", "year"),
                     ("class", "genres"), ("genres", "genres")):
        if src in df.columns and dst not in out.columns:
            out[dst] = df[src].to_numpy()
    if "categories" in df.columns:
        out["category_path"] = [parse_category_list(s, path, i + 2) for i, s in enumerate(df["categories"])]
    elif "genres" in out.columns:
        out["category_path"] = [g.split()[:1] for g in out["genres"]]
    return out


def parse_category_list(text: str, path, line: int) -> list[str]:
    """``'Beauty', 'Makeup', "Women's"`` -> ``['Beauty', 'Makeup', "Women's"]``.

    A list of lists (several paths) gives its first path; HTML entities are unescaped.
    """
    text = text.strip()
    if not text:
        return []
    try:
        value = ast.literal_eval(f"[{text}]" if not text.startswith("[") else text)
    except (ValueError, SyntaxError):
        raise DataFormatError(path, "a comma-separated list of quoted category names", line, text) from None
    if value and isinstance(value[0], (list, tuple)):  # a list of paths: take the first
        value = value[0]
    return [html.unescape(str(v)) for v in value]
