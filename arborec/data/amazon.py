"""Amazon review loaders: 2014/2018 review and metadata JSON files, and the P5 ``user_sequence.txt`` layout."""

from __future__ import annotations

import ast
import html
import json
import re
from pathlib import Path

import pandas as pd

from arborec.data._tables import Dataset
from arborec.data.p5 import read_p5_sequences
from arborec.data.recbole import parse_category_list, read_recbole_item_catalog
from arborec.data.tabular import open_text
from arborec.diagnostics import DataFormatError, logger

__all__ = ["read_amazon", "read_amazon_reviews", "read_amazon_meta", "read_p5_sequences",
           "read_recbole_item_catalog", "parse_category_list"]

#: Review files, most specific first: 2014 5-core (``reviews_<Cat>_5.json``), then 2018 (``<Cat>_5.json``).
REVIEW_PATTERNS = ("reviews_*_5.json.gz", "reviews_*_5.json", "*_5.json.gz", "*_5.json")
_ASIN = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]+)['"]""")


def read_amazon(folder: str | Path, name: str | None = None) -> Dataset:
    """An Amazon folder in either layout: P5 ``user_sequence.txt`` if present, else review JSON files.

    See :func:`read_p5_sequences` and :func:`read_amazon_reviews`.
    """
    folder = Path(folder)
    if (folder / "user_sequence.txt").exists():
        return read_p5_sequences(folder, name or folder.name)
    return read_amazon_reviews(folder, name=name)


def find_review_file(folder: str | Path) -> Path | None:
    """The review file of an Amazon folder (see :data:`REVIEW_PATTERNS`), or None."""
    folder = Path(folder)
    for pattern in REVIEW_PATTERNS:
        found = sorted(p for p in folder.glob(pattern) if not p.name.startswith("meta_"))
        if found:
            if len(found) > 1:
                logger.info("%s: several review files; reading %s", folder, found[0].name)
            return found[0]
    return None


def read_amazon_reviews(path: str | Path, meta_path: str | Path | None = None, name: str | None = None) -> Dataset:
    """Amazon reviews 2014 or 2018 (McAuley et al.): review JSON lines and, if found, item metadata.

    Parameters
    ----------
    path : path
        A review file (``reviews_<Cat>_5.json[.gz]`` for 2014, ``<Cat>_5.json[.gz]`` for 2018:
        one JSON object per line with ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime``),
        or a folder holding one.
    meta_path : path, optional
        The metadata file; default: ``meta_<Cat>.json[.gz]`` next to the review file, if present
        (see :func:`read_amazon_meta`).
    name : str, optional
        Default ``amazon-<cat>`` for 2014 files and ``amazon2018-<cat>`` for 2018 files
        (lower case, ``_`` as ``-``).

    Notes
    -----
    ``unixReviewTime`` has a resolution of one day: reviews of a user on the same day keep their
    file order. Repeated reviews (the 2018 files hold some exact duplicates) are kept here; the
    preparation step deduplicates them.
    """
    path = Path(path)
    if path.is_dir():
        found = find_review_file(path)
        if found is None:
            raise FileNotFoundError(f"{path}: no Amazon review file ({', '.join(REVIEW_PATTERNS)})")
        path = found
    category, year = _category_of(path)
    if meta_path is None:
        candidates = [path.parent / f"meta_{category}.json.gz", path.parent / f"meta_{category}.json"]
        meta_path = next((p for p in candidates if p.exists()), None)
    inter = _read_reviews(path)
    catalog = read_amazon_meta(meta_path, items=set(inter["item"])) if meta_path is not None else None
    if catalog is None:
        logger.info("%s: no metadata file meta_%s.json[.gz]; items get empty text", path, category)
    if name is None:
        prefix = "amazon" if year == 2014 else "amazon2018"
        name = f"{prefix}-{category.lower().replace('_', '-')}"
    return Dataset(name, inter, catalog, has_timestamps=True, source=str(path.parent))


def _category_of(path: Path) -> tuple[str, int]:
    stem = path.name.removesuffix(".gz").removesuffix(".json")
    year = 2014 if stem.startswith("reviews_") else 2018
    stem = stem.removeprefix("reviews_").removesuffix("_5")
    return stem, year


def _read_reviews(path: Path) -> pd.DataFrame:
    users, items, ratings, times = [], [], [], []
    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                u, i, r, t = str(rec["reviewerID"]), str(rec["asin"]), float(rec["overall"]), int(rec["unixReviewTime"])
            except json.JSONDecodeError:
                raise DataFormatError(path, "one JSON object per line", n, line.strip()) from None
            except (KeyError, TypeError, ValueError):
                raise DataFormatError(path, "a review with reviewerID, asin, a numeric overall and an integer "
                                      "unixReviewTime", n, line.strip()) from None
            users.append(u)
            items.append(i)
            ratings.append(r)
            times.append(t)
    logger.info("%s: read %d reviews", path, len(users))
    return pd.DataFrame({"user": users, "item": items, "timestamp": times, "rating": ratings})


def read_amazon_meta(path: str | Path, items: set[str] | None = None) -> pd.DataFrame:
    """Amazon item metadata (``meta_<Cat>.json[.gz]``) as a catalog.

    Each line is one item: strict JSON (2018) or a Python dict literal (2014, parsed with
    :func:`ast.literal_eval` when :func:`json.loads` fails). Kept fields: ``title``, ``brand``,
    ``description`` (a string or a list of strings, joined with spaces), and the category path:
    the first path of ``categories`` (2014, a list of lists) or ``category`` (2018, a flat list).
    HTML entities such as ``&amp;`` are unescaped.

    Parameters
    ----------
    items : set of str, optional
        Only these item ids are kept (the others are counted and logged); lines of other items
        are skipped before being parsed, which makes reading large 2014 files much faster.
    """
    path = Path(path)
    rows, skipped = [], 0
    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if items is not None:
                m = _ASIN.search(line)
                if m is not None and m.group(1) not in items:
                    skipped += 1
                    continue
            rec = _parse_record(line, path, n)
            asin = rec.get("asin")
            if not asin:
                raise DataFormatError(path, "an item record with an 'asin' key", n, line.strip())
            if items is not None and str(asin) not in items:
                skipped += 1
                continue
            rows.append(_meta_row(rec))
    if skipped:
        logger.info("%s: %d metadata records of items without reviews skipped", path, skipped)
    logger.info("%s: read %d item records", path, len(rows))
    return pd.DataFrame(rows, columns=["item", "title", "brand", "description", "category_path"])


def _parse_record(line: str, path: Path, n: int) -> dict:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        try:
            rec = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataFormatError(path, "one JSON object or Python dict literal per line", n, line.strip()) from None
    if not isinstance(rec, dict):
        raise DataFormatError(path, "one JSON object or Python dict literal per line", n, line.strip())
    return rec


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value if v)
    return html.unescape(str(value)).strip()


def _meta_row(rec: dict) -> dict:
    if rec.get("categories"):  # 2014: a list of paths
        path = rec["categories"][0] if isinstance(rec["categories"][0], (list, tuple)) else rec["categories"]
    else:  # 2018: one flat path
        path = rec.get("category") or []
    return {
        "item": str(rec["asin"]),
        "title": _text(rec.get("title")),
        "brand": _text(rec.get("brand")),
        "description": _text(rec.get("description")),
        "category_path": [c for c in (_text(c) for c in path) if c],
    }
