"""One's own event table as `--data FILE`: its columns found by their usual names, or named by a mapping."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from arborec.data._tables import TEXT_FIELDS, Dataset
from arborec.data.tabular import _is_parquet, read_table, sniff_separator
from arborec.diagnostics import ConfigError, DataFormatError, logger

#: File names `--data` reads as one table of events (optionally gzipped text).
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")

#: The roles a column can play, and the usual names of each (compared lower-case, without ``_``, ``-`` or
#: spaces: ``userId`` and ``User ID`` are ``user_id``), tried in this order (an id before a bare name: of
#: ``product`` and ``product_id``, the id). ``user`` and ``item`` are required; the rest are read when present.
USUAL_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "user", "customer_id", "customer", "client_id", "client", "buyer_id", "buyer", "visitor_id",
             "visitor", "member_id", "member", "account_id", "account", "session_id", "session", "uid"),
    "item": ("item_id", "item", "product_id", "product", "sku", "asin", "movie_id", "movie", "article_id", "article",
             "song_id", "song", "track_id", "track", "book_id", "book", "offer_id", "offer", "iid"),
    "time": ("timestamp", "time", "ts", "datetime", "date", "event_time", "created_at", "unix_time", "when"),
    "rating": ("rating", "stars", "score"),
    "title": ("title", "name", "product_name", "item_name", "product_title", "item_title", "movie_title"),
    "category": ("category", "category_path", "categories", "product_category", "department"),
    "brand": ("brand", "manufacturer", "maker"),
    "description": ("description", "desc", "summary", "text"),
    "genres": ("genres", "genre"),
    "tags": ("tags", "keywords"),
    "year": ("year", "release_year"),
}
ROLES = tuple(USUAL_NAMES)
_CATALOG_ROLES = ("title", "category", *(f for f in TEXT_FIELDS if f != "title"))


def is_table_file(path: str | Path) -> bool:
    """Whether ``path`` is a file `--data` reads as a table of events (by its name: .csv, .tsv, .parquet...)."""
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return path.is_file() and bool(suffixes) and suffixes[-1] in TABLE_SUFFIXES


def parse_columns(text: str | None) -> dict[str, str]:
    """``"user=customer,item=sku"`` as ``{"user": "customer", "item": "sku"}`` (roles checked against `ROLES`)."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        role, sep, column = part.partition("=")
        role, column = role.strip().lower(), column.strip()
        if not sep or not column:
            raise ConfigError(f"--columns: {part!r} is not ROLE=COLUMN (e.g. user=customer_id)")
        if role not in ROLES:
            raise ConfigError(f"--columns: unknown role {role!r}; roles: {', '.join(ROLES)}")
        mapping[role] = column
    return mapping


def guess_columns(columns: list[str], mapping: dict[str, str] | None = None,
                  roles: tuple[str, ...] = ROLES) -> dict[str, str]:
    """Role -> column for a table with these ``columns``: the ``mapping`` given, the rest by their usual names.

    A column plays one role at most; a role with no column is left out.
    """
    mapping = {r: c for r, c in (mapping or {}).items() if r in roles}
    taken = set(mapping.values())
    by_key: dict[str, str] = {}
    for col in columns:
        by_key.setdefault(_key(col), col)
    for role in roles:
        if role in mapping:
            continue
        for name in USUAL_NAMES[role]:
            col = by_key.get(_key(name))
            if col is not None and col not in taken:
                mapping[role] = col
                taken.add(col)
                break
    return mapping


def read_table_file(path: str | Path, columns: dict[str, str] | None = None, catalog: str | Path | None = None,
                    category_sep: str = ">", time_format: str | None = None, name: str | None = None) -> Dataset:
    """Read a CSV/TSV/Parquet table of events (and an optional catalogue table), finding what each column is.

    Parameters
    ----------
    path : a table file, one row per event
    columns : role -> column name (roles: `ROLES`), for the columns whose names are not the usual ones
        (`USUAL_NAMES`); the others are found by name. ``user`` and ``item`` must be found.
    catalog : a table file with one row per item (its item id column found as ``item`` is); else item text
        columns are read from the events table (each item's first row)
    category_sep, time_format, name : as in `arborec.data.read_table`

    Logs, in one line, which column plays which role and how it was found.

    Raises
    ------
    DataFormatError
        A required role has no column, or a named column is not in the file (the file, its header line and
        the columns it has are named, with the flag that fixes it).
    """
    path = Path(path)
    given = dict(columns or {})
    header = _header(path)
    _check_named(path, header, {r: c for r, c in given.items() if catalog is None or r not in _CATALOG_ROLES})
    events = guess_columns(header, given, roles=("user", "item", "time", "rating")
                           + (() if catalog is not None else _CATALOG_ROLES))
    for role in ("user", "item"):
        if role not in events:
            usual = ", ".join(USUAL_NAMES[role][:6])
            raise DataFormatError(path, f"a {role} column (usual names: {usual}, ...); name it with "
                                  f"--columns {role}=COLUMN", None if _is_parquet(path) else 1,
                                  f"columns {header}")
    text_of = events
    item_id_col = None
    if catalog is not None:
        cpath = Path(catalog)
        cheader = _header(cpath)
        _check_named(cpath, cheader, {r: c for r, c in given.items() if r in _CATALOG_ROLES})
        item_id_col = (events["item"] if events["item"] in cheader
                       else guess_columns(cheader, None, ("item",)).get("item"))
        if item_id_col is None:
            raise DataFormatError(cpath, f"an item id column (named {events['item']!r} as in the events, or a usual "
                                  "item name)", None if _is_parquet(cpath) else 1, f"columns {cheader}")
        text_of = guess_columns([c for c in cheader if c != item_id_col], given, roles=_CATALOG_ROLES)
    found = events if catalog is None else {**events, **text_of}
    logger.info("%s: columns %s (%s)", path, ", ".join(f"{r}={c}" for r, c in found.items()),
                "as named by --columns, the rest by their usual names" if given else
                "found by their usual names; --columns ROLE=COLUMN changes one")
    return read_table(path, user_col=events["user"], item_col=events["item"], time_col=events.get("time"),
                      rating_col=events.get("rating"), catalog_path=catalog, item_id_col=item_id_col,
                      title_col=text_of.get("title"), category_col=text_of.get("category"),
                      text_cols={f: text_of[f] for f in TEXT_FIELDS if f != "title" and f in text_of},
                      category_sep=category_sep, time_format=time_format, name=name)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", str(name).lower())


def _header(path: Path) -> list[str]:
    if not path.exists():
        raise FileNotFoundError(path)
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return [str(c) for c in pd.read_csv(path, sep=sniff_separator(path), nrows=0).columns]


def _check_named(path: Path, header: list[str], named: dict[str, str]) -> None:
    missing = {r: c for r, c in named.items() if c not in header}
    if missing:
        wanted = ", ".join(f"{r}={c}" for r, c in missing.items())
        raise DataFormatError(path, f"the column(s) --columns names ({wanted})", None if _is_parquet(path) else 1,
                              f"columns {header}")
