"""The two canonical tables every loader produces: interactions and catalog."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from arborec.diagnostics import ConfigError, DataFormatError, logger

#: Text columns a catalog may carry besides ``title`` (rendered into item text by ``arborec.text``).
TEXT_FIELDS = ("title", "brand", "description", "genres", "tags", "year")


@dataclass
class Dataset:
    """A dataset as loaded from its source, before any filtering.

    Attributes
    ----------
    name : str
        Short name (``"ml-100k"``, ``"amazon-beauty"``, ``"synthetic"``...).
    interactions : DataFrame, one row per event
        ``user`` (str), ``item`` (str), ``timestamp`` (int64, an order key: unix seconds, or the
        position in the file when the source has no time), optional ``rating`` (float64).
    catalog : DataFrame, one row per item
        ``item`` (str, unique), ``title`` (str), ``category_path`` (list of str, root first, may be
        empty), and any of :data:`TEXT_FIELDS`.
    has_timestamps : bool
        False when ``timestamp`` is only the file order (the split then keeps that order).
    source : str
        Where the tables were read from (a folder, a URL or ``"generated"``).
    """

    name: str
    interactions: pd.DataFrame
    catalog: pd.DataFrame
    has_timestamps: bool = True
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.interactions = canonical_interactions(self.interactions, self.source or self.name)
        self.catalog = canonical_catalog(self.catalog, self.interactions, self.source or self.name)

    @property
    def has_text(self) -> bool:
        """Whether any item has text (see :func:`has_item_text`)."""
        return has_item_text(self.catalog)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, {len(self.interactions):,} interactions, "
            f"{self.interactions['user'].nunique():,} users, {len(self.catalog):,} items)"
        )


def has_item_text(catalog: pd.DataFrame | None) -> bool:
    """Whether any item of ``catalog`` has text: a non-empty value in one of :data:`TEXT_FIELDS`.

    The one test of "this catalogue has no item text" (Amazon Sports: anonymous attribute ids
    only). Category paths do not count: they are structure (the interest tree), and they may be
    anonymous (``attr-17``). When it is False, item text vectors carry no information: the
    text renderer gives empty texts, and the interest tree comes from the category paths.
    """
    if catalog is None:
        return False
    for name in TEXT_FIELDS:
        if name in catalog.columns:
            values = catalog[name]
            if values.dtype == object or pd.api.types.is_string_dtype(values):
                if values.map(_non_empty).any():
                    return True
            elif values.notna().any():  # numbers (a year column read as integers)
                return True
    return False


def require_item_text(data, model: str) -> None:
    """Raise :class:`ConfigError` when ``data``'s catalogue has no item text: for the models that read items
    only through their text (``text``, ``text-ft``, ``unisrec-t``), which have nothing to learn from there."""
    if not has_item_text(getattr(data, "catalog", None)):
        raise ConfigError(f"{model} reads items only through their text, and the catalogue of "
                          f"{getattr(data, 'name', 'this dataset')!r} has no item text (all of "
                          f"{', '.join(TEXT_FIELDS)} are empty); use a model with item IDs")


def _non_empty(value) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    if isinstance(value, (list, tuple, np.ndarray)):
        return any(_non_empty(v) for v in value)
    return bool(str(value).strip())


def canonical_interactions(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check and convert an interaction table to the canonical dtypes (see :class:`Dataset`)."""
    missing = [c for c in ("user", "item", "timestamp") if c not in df.columns]
    if missing:
        raise DataFormatError(source, f"interaction columns user, item, timestamp; missing {missing}")
    out = pd.DataFrame({"user": _as_str(df["user"]), "item": _as_str(df["item"])})
    ts = pd.to_numeric(df["timestamp"], errors="coerce")
    if ts.isna().any():
        bad = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise DataFormatError(source, "a numeric timestamp", line=None, got=f"row {bad}: {df['timestamp'].iloc[bad]!r}")
    out["timestamp"] = ts.to_numpy().astype("int64")
    if "rating" in df.columns:
        r = pd.to_numeric(df["rating"], errors="coerce")
        if r.isna().any():
            bad = int(np.flatnonzero(r.isna().to_numpy())[0])
            raise DataFormatError(source, "a numeric rating", got=f"row {bad}: {df['rating'].iloc[bad]!r}")
        out["rating"] = r.to_numpy().astype("float64")
    return out


def _as_str(column: pd.Series):
    """The ids as str: an object array, or a categorical with str categories (kept compact: large tables
    are read dictionary-encoded, one small string per distinct id instead of one per row)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.rename_categories(column.cat.categories.astype(str)).array
    return column.astype(str).to_numpy()


def canonical_catalog(catalog: pd.DataFrame | None, interactions: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check a catalog, give every interacted item a row, and normalise ``category_path`` to lists.

    Items that appear in interactions but not in the catalog get an empty title and path (their
    count is logged); duplicated catalog rows keep their first occurrence (also counted).
    """
    if catalog is None or len(catalog) == 0:
        catalog = pd.DataFrame({"item": pd.Series(dtype=str)})
    if "item" not in catalog.columns:
        raise DataFormatError(source, "a catalog column 'item'")
    cat = catalog.copy()
    cat["item"] = cat["item"].astype(str)
    dup = cat["item"].duplicated()
    if dup.any():
        logger.info("%s: %d duplicated catalog rows dropped (first kept)", source, int(dup.sum()))
        cat = cat[~dup]
    known = set(cat["item"])
    extra = pd.unique(np.asarray(interactions["item"][~interactions["item"].isin(known)], dtype=object))
    if len(extra):
        logger.info("%s: %d interacted items have no catalog row; they get empty text", source, len(extra))
        cat = pd.concat([cat, pd.DataFrame({"item": extra})], ignore_index=True)
    if "title" not in cat.columns:
        cat["title"] = ""
    cat["title"] = cat["title"].fillna("").astype(str)
    if "category_path" not in cat.columns:
        cat["category_path"] = [[] for _ in range(len(cat))]
    else:
        cat["category_path"] = [_as_path(p) for p in cat["category_path"]]
    return cat.reset_index(drop=True)


def _as_path(p) -> list[str]:
    if p is None or (isinstance(p, float) and np.isnan(p)):
        return []
    if isinstance(p, str):
        p = [s for s in (x.strip() for x in p.split(">")) if s] if p else []
    return [str(x) for x in p]
