"""Custom datasets: any CSV or Parquet table of interactions (and optional catalog) with a column mapping."""

from __future__ import annotations

import ast
import csv
import gzip
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from arborec.data._tables import TEXT_FIELDS, Dataset
from arborec.diagnostics import DataFormatError, logger

_PARQUET_SUFFIXES = (".parquet", ".pq")


# --------------------------------------------------------------------------------------------
# Small file helpers shared by the loaders of this package


def open_text(path: str | Path, encoding: str = "utf-8"):
    """Open a text file for reading, decompressing it on the fly when its name ends in ``.gz``."""
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding)
    return open(path, encoding=encoding)


def find_bad_line(lines: Iterable[str], parse: Callable[[str], object], skip: int = 0) -> tuple[int, str] | None:
    """The first non-blank line that ``parse`` rejects, as ``(1-based line number, text)``.

    ``parse`` signals a bad line by raising ``ValueError`` (or ``KeyError`` / ``IndexError``);
    the first ``skip`` lines (a header) are not checked. Returns None when every line parses.
    Loaders read large files with vectorised pandas code and call this only when that fails,
    to name the line at fault.
    """
    for n, line in enumerate(lines, start=1):
        if n <= skip or not line.strip():
            continue
        try:
            parse(line.rstrip("\r\n"))
        except (ValueError, KeyError, IndexError):
            return n, line.rstrip("\r\n")
    return None


def raise_bad_line(path: str | Path, expected: str, parse: Callable[[str], object], skip: int = 0,
                   encoding: str = "utf-8") -> None:
    """Raise :class:`DataFormatError` for the first line of ``path`` that ``parse`` rejects.

    When every line parses (the fault is elsewhere), the error names the file without a line.
    """
    with open_text(path, encoding) as f:
        bad = find_bad_line(f, parse, skip)
    if bad is None:
        raise DataFormatError(path, expected)
    raise DataFormatError(path, expected, bad[0], bad[1])


# --------------------------------------------------------------------------------------------
# read_table


def read_table(
    interactions_path: str | Path,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = None,
    rating_col: str | None = None,
    catalog_path: str | Path | None = None,
    item_id_col: str | None = None,
    title_col: str | None = "title",
    category_col: str | None = None,
    text_cols: dict[str, str] | None = None,
    sep: str | None = None,
    category_sep: str = ">",
    time_format: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Read interactions (and optionally a catalog) from CSV or Parquet files, given a column mapping.

    Parameters
    ----------
    interactions_path : path
        A ``.csv`` / ``.tsv`` / ``.txt`` file (optionally ``.gz``) or a ``.parquet`` file, one row
        per event.
    user_col, item_col : str
        Columns holding the user and item ids (read as strings). Missing values are an error.
    time_col : str, optional
        Event time: unix seconds (numbers) or date-time strings (parsed with ``time_format``, or
        inferred). Without it, ``timestamp`` is the row position and ``has_timestamps`` is False.
    rating_col : str, optional
        A numeric rating column.
    catalog_path : path, optional
        A table with one row per item. When None, catalog columns (``title_col``,
        ``category_col``, ``text_cols``) are taken from the interactions table if it has them,
        from the first row of each item.
    item_id_col : str, optional
        The item id column of the catalog (default: ``item_col``).
    title_col : str or None
        The item title column. It must exist in ``catalog_path`` when one is given (pass None
        for a catalog without titles).
    category_col : str, optional
        The category path: a list (Parquet), a string such as ``"A > B > C"`` split on
        ``category_sep``, or a list literal such as ``"['A', 'B']"``.
    text_cols : dict, optional
        Other text fields, canonical name to column, e.g. ``{"brand": "Brand"}``; names must be
        among :data:`arborec.data._tables.TEXT_FIELDS`.
    sep : str, optional
        The CSV separator; by default ``\\t`` for ``.tsv`` files and otherwise sniffed from the
        first lines (``,``, ``;``, tab or ``|``).
    category_sep : str
        Separator of string category paths.
    time_format : str, optional
        A :func:`datetime.strptime` format for string times.
    name : str, optional
        Dataset name (default: the interactions file name without suffixes).

    Returns
    -------
    Dataset

    Raises
    ------
    DataFormatError
        For a missing column, a missing id, or a time or rating that cannot be parsed, naming the
        file and the line (for CSV files, the header is line 1 and row ``i`` is line ``i + 2``).
    """
    path = Path(interactions_path)
    text_cols = dict(text_cols or {})
    unknown = sorted(set(text_cols) - set(TEXT_FIELDS))
    if unknown:
        raise ValueError(f"text_cols keys must be among {TEXT_FIELDS}; got {unknown}")
    df = _read_any(path, sep)
    _require_columns(path, df, [c for c in (user_col, item_col, time_col, rating_col) if c])
    for col in (user_col, item_col):
        _require_values(path, df, col)
    inter = pd.DataFrame({"user": df[user_col].astype(str).to_numpy(), "item": df[item_col].astype(str).to_numpy()})
    if time_col:
        inter["timestamp"] = _unix_seconds(path, df, time_col, time_format)
    else:
        inter["timestamp"] = np.arange(len(df), dtype="int64")
    if rating_col:
        inter["rating"] = _numbers(path, df, rating_col)
    item_key = item_id_col or item_col
    if catalog_path is not None:
        cpath = Path(catalog_path)
        cdf = _read_any(cpath, sep)
        wanted = [item_key] + [c for c in (title_col, category_col, *text_cols.values()) if c]
        _require_columns(cpath, cdf, wanted)
        _require_values(cpath, cdf, item_key)
        catalog = _catalog_from(cpath, cdf, item_key, title_col, category_col, text_cols, category_sep)
    else:
        present = [c for c in (title_col, category_col, *text_cols.values()) if c and c in df.columns]
        catalog = None
        if present:
            firsts = df.drop_duplicates(subset=item_col)
            catalog = _catalog_from(path, firsts, item_col,
                                    title_col if title_col in df.columns else None,
                                    category_col if category_col in df.columns else None,
                                    {k: v for k, v in text_cols.items() if v in df.columns}, category_sep)
    logger.info("%s: read %d interactions", path, len(inter))
    name = name or path.name.split(".")[0]
    return Dataset(name, inter, catalog, has_timestamps=time_col is not None, source=str(path))


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in _PARQUET_SUFFIXES


def _read_any(path: Path, sep: str | None) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(path)
    if _is_parquet(path):
        return pd.read_parquet(path)
    sep = sep or sniff_separator(path)
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise DataFormatError(path, f"a table separated by {sep!r} with the same number of fields on each line",
                              got=str(exc).strip()) from None


def sniff_separator(path: str | Path) -> str:
    """The separator of a delimited text file: tab for ``.tsv``, else sniffed among ``, ; tab |``."""
    path = Path(path)
    if ".tsv" in path.suffixes:
        return "\t"
    with open_text(path) as f:
        sample = f.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _line_of(path: Path, row: int) -> int | None:
    """1-based line of data row ``row`` (None for Parquet, which has no lines)."""
    return None if _is_parquet(path) else row + 2


def _require_columns(path: Path, df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFormatError(path, f"column(s) {missing} (the mapping names them)", _line_of(path, -1),
                              f"columns {list(map(str, df.columns))}")


def _require_values(path: Path, df: pd.DataFrame, col: str) -> None:
    isna = df[col].isna().to_numpy()
    if isna.any():
        row = int(np.flatnonzero(isna)[0])
        raise DataFormatError(path, f"a value in column {col!r}", _line_of(path, row), "an empty field")


def _numbers(path: Path, df: pd.DataFrame, col: str) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(path, f"a number in column {col!r}", _line_of(path, row), str(df[col].iloc[row]))
    return values.to_numpy().astype("float64")


def _unix_seconds(path: Path, df: pd.DataFrame, col: str, time_format: str | None) -> np.ndarray:
    raw = df[col]
    if pd.api.types.is_datetime64_any_dtype(raw):
        times = raw
    else:
        numeric = pd.to_numeric(raw, errors="coerce")
        if time_format is None and numeric.notna().all():
            return np.floor(numeric.to_numpy().astype("float64")).astype("int64")
        times = pd.to_datetime(raw, format=time_format, errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        kind = f"format {time_format!r}" if time_format else "unix seconds or a date"
        expected = f"a time in column {col!r} ({kind})"
        raise DataFormatError(path, expected, _line_of(path, row), str(raw.iloc[row]))
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return (times.to_numpy().astype("datetime64[s]").astype("int64"))


def _catalog_from(path: Path, df: pd.DataFrame, item_col: str, title_col: str | None, category_col: str | None,
                  text_cols: dict[str, str], category_sep: str) -> pd.DataFrame:
    out = pd.DataFrame({"item": df[item_col].astype(str).to_numpy()})
    if title_col:
        out["title"] = df[title_col].fillna("").astype(str).to_numpy()
    for field, col in text_cols.items():
        out[field] = df[col].fillna("").astype(str).to_numpy()
    if category_col:
        out["category_path"] = [_category_path(v, category_sep, path, _line_of(path, i))
                                for i, v in enumerate(df[category_col].to_numpy())]
    return out


def _category_path(value, sep: str, path: Path, line: int | None) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise DataFormatError(path, "a category list literal such as ['A', 'B']", line, text) from None
        if parsed and isinstance(parsed[0], (list, tuple)):  # a list of paths: the first one
            parsed = parsed[0]
        return [str(v).strip() for v in parsed if str(v).strip()]
    return [s for s in (x.strip() for x in text.split(sep)) if s]
