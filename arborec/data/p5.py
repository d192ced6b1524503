"""P5-style sequence folders: ``user_sequence.txt`` and the item catalogue found beside it."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from arborec.data._tables import Dataset
from arborec.data.recbole import read_recbole_item_catalog
from arborec.data.tabular import raise_bad_line
from arborec.diagnostics import DataFormatError, logger

__all__ = ["read_p5_sequences", "read_user_sequences", "read_item_meta_jsonl", "read_item_attributes",
           "attribute_paths", "ATTRIBUTE_PREFIX"]

#: Prefix of the anonymous attribute nodes made from ``item_attributes.json`` (``"attr-17"``).
ATTRIBUTE_PREFIX = "attr-"


def read_user_sequences(path: str | Path, numeric_ids: bool = False) -> pd.DataFrame:
    """``user_sequence.txt``: per line a user id, then that user's item ids in time order (whitespace-separated).

    Returns ``user``, ``item`` and ``timestamp`` = the item's position in its user's line: the
    files carry no time, so the file order is the time order. With ``numeric_ids``, every id must
    be an integer (the error names the first line where one is not).
    """
    path = Path(path)
    users, items, lengths = [], [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DataFormatError(path, "a user id followed by at least one item id", n, line.strip())
            users.append(parts[0])
            items.extend(parts[1:])
            lengths.append(len(parts) - 1)
    lengths = np.asarray(lengths, dtype=np.int64)
    if numeric_ids:
        try:
            np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        except ValueError:
            raise_bad_line(path, "integer user and item ids", lambda s: [int(x) for x in s.split()])
    starts = np.cumsum(lengths) - lengths
    order = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    logger.info("%s: read %d users, %d events", path, len(users), len(items))
    return pd.DataFrame({"user": np.repeat(np.asarray(users, dtype=object), lengths),
                         "item": np.asarray(items, dtype=object), "timestamp": order})


def read_p5_sequences(folder: str | Path, name: str = "amazon-beauty") -> Dataset:
    """A P5 folder: ``user_sequence.txt`` (see :func:`read_user_sequences`) and its catalogue.

    The file has no timestamps: ``timestamp`` is the position in the user's line, so the split
    keeps the file order (``has_timestamps`` is False). The catalogue is the first of these found
    beside it:

    - a RecBole atomic ``*.item`` file (Amazon Beauty, see :func:`read_recbole_item_catalog`);
    - ``item_meta.jsonl`` (Amazon Toys, see :func:`read_item_meta_jsonl`);
    - ``item_attributes.json`` (Amazon Sports: anonymous attributes, no text; see
      :func:`read_item_attributes`).

    Without any of them every item gets an empty title and path.
    """
    folder = Path(folder)
    inter = read_user_sequences(folder / "user_sequence.txt")
    item_files = sorted(folder.glob("*.item"))
    if item_files:
        catalog = read_recbole_item_catalog(item_files[0])
    elif (folder / "item_meta.jsonl").exists():
        catalog = read_item_meta_jsonl(folder / "item_meta.jsonl")
    elif (folder / "item_attributes.json").exists():
        catalog = read_item_attributes(folder / "item_attributes.json", datamaps=folder / "datamaps.json")
    else:
        catalog = None
    return Dataset(name, inter, catalog, has_timestamps=False, source=str(folder))


# --------------------------------------------------------------------------------------------
# item_meta.jsonl (Amazon Toys)


def read_item_meta_jsonl(path: str | Path) -> pd.DataFrame:
    """``item_meta.jsonl``: one JSON object per item with ``item_id``, ``asin``, ``title``, ``categories``.

    The catalogue has ``item`` (the P5 ``item_id``, as str), ``asin``, ``title`` (HTML entities
    such as ``&amp;`` unescaped, whitespace collapsed) and ``category_path``: one of the item's
    category paths (``categories`` is a list of root-first paths), the deepest among those under
    the catalogue's main root (the root most items' paths start with, e.g. ``Toys & Games``),
    the deepest of all when none is; ties go to the alphabetically first. Keeping to the main
    root keeps the tree's first level meaningful: a few Toys items also sit deep under
    ``Clothing, Shoes & Jewelry``, and their plain deepest path would leave the shared root in place.
    """
    path = Path(path)
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise DataFormatError(path, "one JSON object per line", n, line.strip()) from None
            if not isinstance(rec, dict) or rec.get("item_id") in (None, ""):
                raise DataFormatError(path, "a JSON object with an 'item_id'", n, line.strip())
            cats = rec.get("categories") or []
            if not isinstance(cats, list) or not all(isinstance(p, list) for p in cats):
                raise DataFormatError(path, "'categories' as a list of category paths (lists of names)", n,
                                      line.strip())
            paths = [[_clean(c) for c in p if _clean(c)] for p in cats]
            records.append((str(rec["item_id"]), str(rec.get("asin") or ""), _clean(rec.get("title")),
                            [p for p in paths if p]))
    roots = Counter(p[0] for *_, paths in records for p in paths)
    main_root = roots.most_common(1)[0][0] if roots else None
    rows = [{"item": item, "asin": asin, "title": title, "category_path": _deepest(paths, main_root)}
            for item, asin, title, paths in records]
    logger.info("%s: read %d items", path, len(rows))
    return pd.DataFrame(rows, columns=["item", "asin", "title", "category_path"])


def _clean(value) -> str:
    if value is None:
        return ""
    return " ".join(html.unescape(str(value)).split())


def _deepest(paths: list[list[str]], main_root: str | None) -> list[str]:
    under_root = [p for p in paths if p[0] == main_root]
    candidates = under_root or paths
    return min(candidates, key=lambda p: (-len(p), " > ".join(p)), default=[])


# --------------------------------------------------------------------------------------------
# item_attributes.json (Amazon Sports): anonymous attributes, no text


def read_item_attributes(path: str | Path, datamaps: str | Path | None = None) -> pd.DataFrame:
    """``item_attributes.json``: one JSON object, item id -> list of anonymous attribute ids.

    The items have **no text**: the attributes are Amazon's categories and brand, given as bare
    numbers. The catalogue keeps that honest: ``title`` is empty (no text is made up from the
    numbers, so :func:`arborec.data.has_item_text` is False), and the attributes become
    anonymous nodes ``"attr-<id>"`` for the tree, in ``category_path``: each item's attributes
    as a coarse-to-fine path read from how the attributes nest over the catalogue (see
    :func:`attribute_paths`: categories on top, cross-cutting attributes such as brands below
    them; attribute 2, shared by every Sports item, is the root the tree drops).
    ``arborec.hierarchy.build_tree`` builds the tree from these paths when the catalogue has no
    text.

    ``datamaps``: the P5 ``datamaps.json`` beside it, if present; its ``id2item`` gives each
    item's ``asin``.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        near = text[max(0, exc.pos - 40):exc.pos + 40]
        raise DataFormatError(path, f"one JSON object mapping item ids to lists of attribute ids ({exc.msg} at "
                              f"column {exc.colno})", exc.lineno, near) from None
    if not isinstance(raw, dict):
        raise DataFormatError(path, "one JSON object mapping item ids to lists of attribute ids", 1,
                              type(raw).__name__)
    attributes = {}
    for item, values in raw.items():
        if not isinstance(values, list) or not all(isinstance(v, (int, str)) and str(v).strip() for v in values):
            raise DataFormatError(path, "a list of attribute ids for every item", _line_of(text, item),
                                  f"item {item!r}: {values!r}")
        attributes[str(item)] = [str(v).strip() for v in values]
    catalog = pd.DataFrame({"item": list(attributes), "title": "",
                            "category_path": attribute_paths(list(attributes.values()))})
    id2item = _id2item(Path(datamaps)) if datamaps is not None and Path(datamaps).exists() else {}
    if id2item:
        catalog.insert(1, "asin", catalog["item"].map(id2item).fillna("").astype(str))
    logger.info("%s: read %d items with %d distinct attributes (no item text)", path, len(catalog),
                len({a for v in attributes.values() for a in v}))
    return catalog


def attribute_paths(attributes: list[list[str]], min_containment: float = 0.95) -> list[list[str]]:
    """Each item's attribute ids as a root-first path of ``"attr-<id>"`` nodes, from how the attributes nest.

    Categories nest: every item of a subcategory carries its parent category too. Brands cut
    across: a brand's items spread over many categories. So, over the whole catalogue:

    1. attributes are ranked by how many items carry them (ties: the smaller id first);
    2. an attribute's parent is the least frequent higher-ranked attribute that holds at least
       ``min_containment`` of its items (its tightest container), if any: this is the taxonomy the
       attributes imply (a forest; depth = number of ancestors);
    3. an item's path is the ancestor chain of its deepest attribute (ties: the chain with the
       most attributes nested below it, then the more frequent attribute), followed by the item's
       other attributes (a brand, a second category path), most frequent first.

    On Amazon Sports, plain frequency order would make attribute 23, carried by 40% of the items
    across many categories (always listed first, where the P5 files put the brand), the first
    tree level of all of them; the chains keep the categories on top, and consecutive items of a
    user share first-level nodes more often (NMI 0.19 against 0.11 with frequency order, about
    100 nodes either way; training events only: ``benchmarks/attribute_paths.py``).
    Ids that are numbers compare as numbers.
    """
    sets = [sorted(set(values)) for values in attributes]
    count = Counter(a for values in sets for a in values)
    order = sorted(count, key=lambda a: (-count[a], (0, int(a), "") if a.isdigit() else (1, 0, a)))
    rank = {a: r for r, a in enumerate(order)}
    parent, depth, below = _attribute_forest(sets, rank, min_containment)
    chain_below = below.copy()  # attributes nested below the nodes of each attribute's chain
    for r in range(len(order)):
        if parent[r] >= 0:
            chain_below[r] += chain_below[parent[r]]

    def chain(r: int) -> list[int]:
        out = []
        while r >= 0:
            out.append(r)
            r = parent[r]
        return out[::-1]

    paths = []
    for values in sets:
        ranks = [rank[a] for a in values]
        if not ranks:
            paths.append([])
            continue
        deepest = max(ranks, key=lambda r: (depth[r], chain_below[r], -r))
        path = chain(deepest)
        path += sorted(set(ranks) - set(path))
        paths.append([ATTRIBUTE_PREFIX + order[r] for r in path])
    return paths


def _attribute_forest(sets: list[list[str]], rank: dict[str, int], min_containment: float):
    """(parent, depth, number of descendants) per attribute rank; parent -1 for a top-level attribute."""
    n = len(rank)
    rows = np.repeat(np.arange(len(sets)), [len(v) for v in sets])
    cols = np.fromiter((rank[a] for v in sets for a in v), dtype=np.int64, count=len(rows))
    onehot = sp.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(sets), n))
    together = (onehot.T @ onehot).tocsr()  # (n, n) items carrying both attributes
    size = together.diagonal()
    parent = np.full(n, -1, dtype=np.int64)
    for r in range(n):  # higher ranks first: a parent's own parent is known before it
        lo, hi = together.indptr[r], together.indptr[r + 1]
        other, both = together.indices[lo:hi], together.data[lo:hi]
        holds = other[(other < r) & (both >= min_containment * size[r])]
        if len(holds):
            parent[r] = holds.max()  # the least frequent container
    depth = np.zeros(n, dtype=np.int64)
    for r in range(n):
        if parent[r] >= 0:
            depth[r] = depth[parent[r]] + 1
    below = np.zeros(n, dtype=np.int64)
    for r in range(n - 1, -1, -1):
        if parent[r] >= 0:
            below[parent[r]] += below[r] + 1
    return parent, depth, below


def _line_of(text: str, item: str) -> int:
    """The 1-based line of ``"item":`` in a JSON text (the first line when not found)."""
    at = text.find(json.dumps(item) + ":")
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _id2item(path: Path) -> dict[str, str]:
    try:
        maps = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"a JSON object with 'id2item' ({exc.msg})", exc.lineno) from None
    id2item = maps.get("id2item") if isinstance(maps, dict) else None
    if not isinstance(id2item, dict):
        raise DataFormatError(path, "a JSON object with an 'id2item' mapping")
    return {str(k): str(v) for k, v in id2item.items()}
