"""Named datasets: where to find them locally, how to read them, and where to download them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from arborec.data._download import (RemoteFile, amazon2014_files, cache_dir, fetch, grouplens_files,
                                    mind_files)
from arborec.data._tables import Dataset
from arborec.data.amazon import find_review_file, read_amazon, read_amazon_reviews, read_p5_sequences
from arborec.data.mind import mind_split_folders, read_mind
from arborec.data.movielens import (read_ml1m, read_ml100k, read_movielens_csv, read_movielens_dat,
                                    read_movielens_sequences)
from arborec.data.recbole import read_recbole
from arborec.data.scale import is_scale_folder, read_scale_folder
from arborec.data.synthetic import make_synthetic
from arborec.data.table_file import TABLE_SUFFIXES, is_table_file, read_table_file
from arborec.diagnostics import DataFormatError, DatasetNotFoundError

__all__ = ["DatasetSpec", "REGISTRY", "register", "cache_dir", "search_folders", "find_local", "load_dataset",
           "read_folder", "describe_datasets", "LAYOUTS", "Layout"]

DATA_DIR_ENV = "ARBOREC_DATA_DIR"


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: how to read its folder, what identifies that folder, where to download it.

    Attributes
    ----------
    marker : str
        A file (or glob pattern, e.g. ``"train/behaviors.tsv"``) whose presence in
        ``<search folder>/<name>/`` means the dataset is there.
    other_markers : tuple of str
        Files of other layouts ``read`` also accepts (any one marker is enough).
    remote : tuple of RemoteFile
        Files to download, verify and unpack when the dataset is found nowhere (see
        :func:`arborec.data._download.fetch`); empty when it cannot be downloaded.
    """

    name: str
    read: Callable[[Path], Dataset]
    marker: str
    description: str
    aliases: tuple[str, ...] = field(default_factory=tuple)
    remote: tuple[RemoteFile, ...] = field(default_factory=tuple)
    other_markers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def markers(self) -> tuple[str, ...]:
        """All the marker files, the main one first."""
        return (self.marker, *self.other_markers)

    def found_in(self, folder: Path) -> bool:
        """Whether ``folder`` holds one of the marker files."""
        return folder.is_dir() and any(_has(folder, m) for m in self.markers)


def _has(folder: Path, pattern: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return next(iter(folder.glob(pattern)), None) is not None
    return (folder / pattern).exists()


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> None:
    """Add a dataset to :data:`REGISTRY` under its name and aliases (replacing any of the same name)."""
    REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        REGISTRY[alias] = spec


def _movielens(name: str, archive: str, description: str, aliases: tuple[str, ...] = ()) -> DatasetSpec:
    if name == "ml-100k":
        return DatasetSpec(name, read_ml100k, "u.data", description, aliases, grouplens_files(archive))
    if name == "ml-1m":  # the official ratings.dat, or the sequential version (user_sequence.txt + movies.dat)
        return DatasetSpec(name, lambda p: read_ml1m(p, name), "ratings.dat", description, aliases,
                           grouplens_files(archive), other_markers=("user_sequence.txt",))
    if name == "ml-10m":
        return DatasetSpec(name, lambda p: read_movielens_dat(p, name), "ratings.dat", description, aliases,
                           grouplens_files(archive))
    return DatasetSpec(name, lambda p: read_movielens_csv(p, name), "ratings.csv", description, aliases,
                       grouplens_files(archive))


def _amazon(name: str, category: str, description: str, aliases: tuple[str, ...] = ()) -> DatasetSpec:
    reviews = f"reviews_{category}_5.json"
    if name == "amazon-beauty":  # the P5 layout stays the first marker, as it always was
        markers = ("user_sequence.txt", reviews + ".gz", reviews)
    else:
        markers = (reviews + ".gz", reviews, "user_sequence.txt")
    return DatasetSpec(name, lambda p: read_amazon(p, name), markers[0], description, aliases,
                       amazon2014_files(category), markers[1:])


def _mind(name: str, size: str, description: str) -> DatasetSpec:
    return DatasetSpec(name, lambda p: read_mind(p, name), "train/behaviors.tsv", description,
                       remote=mind_files(size), other_markers=("behaviors.tsv", "*/behaviors.tsv"))


register(_movielens("ml-100k", "ml-100k.zip", "MovieLens 100K: 943 users, 1,682 movies, 100k ratings",
                    aliases=("movielens-100k",)))
register(_movielens("ml-1m", "ml-1m.zip", "MovieLens 1M: 6,040 users, about 3,900 movies, 1,000,209 ratings "
                    "(ratings.dat); or the sequential version of the papers (user_sequence.txt + movies.dat): "
                    "6,040 users, 3,416 movies, 999,611 events", aliases=("movielens-1m",)))
register(_movielens("ml-10m", "ml-10m.zip",
                    "MovieLens 10M: 71,567 users, 10,681 movies, 10,000,054 ratings, 95,580 tags",
                    aliases=("movielens-10m",)))
register(_movielens("ml-20m", "ml-20m.zip",
                    "MovieLens 20M: 138,493 users, 27,278 movies, 20,000,263 ratings, 465,564 tags",
                    aliases=("movielens-20m",)))
register(_movielens("ml-25m", "ml-25m.zip",
                    "MovieLens 25M: 162,541 users, 62,423 movies, 25,000,095 ratings, 1,093,360 tags",
                    aliases=("movielens-25m",)))
register(_movielens("ml-latest-small", "ml-latest-small.zip",
                    "MovieLens latest, small: about 600 users, 9,000 movies, 100k ratings (updated over time)"))
register(_movielens("ml-latest", "ml-latest.zip", "MovieLens latest, full: over 30M ratings (updated over time)"))
register(_amazon("amazon-beauty", "Beauty",
                 "Amazon Beauty 5-core (2014 reviews + metadata, or P5 user_sequence.txt + RecBole "
                 "Amazon_Beauty.item): 22,363 users, 12,101 items, 198,502 reviews", aliases=("beauty",)))
register(_amazon("amazon-sports", "Sports_and_Outdoors",
                 "Amazon Sports and Outdoors 5-core (2014 reviews + metadata, or P5 user_sequence.txt + "
                 "item_attributes.json: anonymous attributes, no item text): 35,598 users, 18,357 items, "
                 "296,337 reviews", aliases=("sports",)))
register(_amazon("amazon-toys", "Toys_and_Games",
                 "Amazon Toys and Games 5-core (2014 reviews + metadata, or P5 user_sequence.txt + "
                 "item_meta.jsonl): 19,412 users, 11,924 items, 167,597 reviews", aliases=("toys",)))
register(_mind("mind-small", "small", "MIND small (Microsoft News, train + dev splits): clicks and "
                                      "histories of 50,000 users"))
register(_mind("mind-large", "large", "MIND large (Microsoft News, train + dev splits): clicks and "
                                      "histories of about 1M users"))


def search_folders(data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for ``<name>/``, in order: the argument, ``$ARBOREC_DATA_DIR``, the cache."""
    folders = []
    if data_dir:
        folders.append(Path(data_dir))
    if os.environ.get(DATA_DIR_ENV):
        folders.extend(Path(p) for p in os.environ[DATA_DIR_ENV].split(os.pathsep) if p)
    folders.append(cache_dir() / "datasets")
    return folders


def find_local(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The first ``<folder>/<name>/`` holding the dataset, over :func:`search_folders`; else None."""
    spec = _spec(name)
    for folder in search_folders(data_dir):
        if spec.found_in(folder / spec.name):
            return folder / spec.name
    return None


def _spec(name: str) -> DatasetSpec:
    spec = REGISTRY.get(name)
    if spec is None:
        known = ", ".join(sorted({s.name for s in REGISTRY.values()} | {"synthetic"}))
        raise DatasetNotFoundError(f"{name!r} is not a known dataset ({known})")
    return spec


def load_dataset(name_or_folder: str, data_dir: str | Path | None = None, download: bool = True,
                 columns: dict[str, str] | None = None, catalog: str | Path | None = None) -> Dataset:
    """Load a dataset by registered name (``"ml-100k"``, ``"synthetic"``...), from a folder path, or from a
    table file of events (CSV, TSV, Parquet: `arborec.data.read_table_file`, with ``columns`` naming the
    columns not found by their usual names and ``catalog`` an optional table of items).

    A name is looked for as ``<folder>/<name>/`` in :func:`search_folders`. When it is found
    nowhere and has remote files, they are downloaded (unless ``download=False``), verified
    and unpacked into ``cache_dir()/"datasets"/<name>/`` (see
    :func:`arborec.data._download.fetch`), where later calls find them.

    Raises
    ------
    DatasetNotFoundError
        The name is unknown, or the dataset is not on this machine and cannot be downloaded
        (``download=False``, no remote files, or no network); the message lists the folders
        looked in and what to do.
    ChecksumError
        A download does not match its checksum.
    """
    if name_or_folder == "synthetic":
        return make_synthetic()
    if name_or_folder not in REGISTRY:
        path = Path(name_or_folder)
        if path.is_dir():
            return read_folder(path)
        if is_table_file(path):
            return read_table_file(path, columns=columns, catalog=catalog)
        known = ", ".join(sorted({s.name for s in REGISTRY.values()} | {"synthetic"}))
        raise DatasetNotFoundError(f"{name_or_folder!r} is neither a known dataset ({known}), nor a folder, nor a "
                                   f"table file ({', '.join(TABLE_SUFFIXES)}, optionally .gz)")
    spec = REGISTRY[name_or_folder]
    local = find_local(spec.name, data_dir)
    if local is not None:
        return spec.read(local)
    looked = ", ".join(str(f / spec.name) for f in search_folders(data_dir))
    where = (f"looked for {' or '.join(spec.markers)} in {looked}")
    by_hand = (f"Put the files in one of those folders, or pass --data-dir / set {DATA_DIR_ENV} "
               f"to a folder holding {spec.name}/.")
    if not spec.remote:
        raise DatasetNotFoundError(f"dataset {spec.name!r} not found ({where}); it cannot be downloaded "
                                   f"automatically. {by_hand}")
    urls = " and ".join(r.url for r in spec.remote)
    if not download:
        raise DatasetNotFoundError(f"dataset {spec.name!r} not found ({where}) and download=False. "
                                   f"Allow the download, or fetch {urls} by hand. {by_hand}")
    try:
        dest = fetch(spec.name, spec.remote)
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(
            f"dataset {spec.name!r} is not on this machine ({where}) and could not be downloaded: {exc}. "
            f"If you are offline, fetch {urls} on a connected machine and unpack into "
            f"{cache_dir() / 'datasets' / spec.name}. {by_hand}") from None
    if not spec.found_in(dest):
        raise DataFormatError(dest, f"the downloaded files of {spec.name!r} to include {spec.marker}")
    return spec.read(dest)


@dataclass(frozen=True)
class Layout:
    """A folder layout :func:`read_folder` recognises: what to look for, and how to read it."""

    description: str
    detect: Callable[[Path], bool]
    read: Callable[[Path, str | None], Dataset]


#: Layouts :func:`read_folder` tries, in order (the first match wins).
LAYOUTS: tuple[Layout, ...] = (
    Layout("MovieLens 100K (u.data)", lambda p: (p / "u.data").exists(),
           lambda p, n: read_ml100k(p, n or "ml-100k")),
    Layout("MovieLens 1M/10M (ratings.dat)", lambda p: (p / "ratings.dat").exists(),
           lambda p, n: read_movielens_dat(p, n or p.name)),
    Layout("MovieLens 20M/25M/latest (ratings.csv)", lambda p: (p / "ratings.csv").exists(),
           lambda p, n: read_movielens_csv(p, n or p.name)),
    Layout("MovieLens sequences (user_sequence.txt + movies.dat)",
           lambda p: (p / "user_sequence.txt").exists() and (p / "movies.dat").exists(),
           lambda p, n: read_movielens_sequences(p, n or p.name)),
    Layout("P5 sequences (user_sequence.txt [+ *.item, item_meta.jsonl or item_attributes.json])",
           lambda p: (p / "user_sequence.txt").exists(),
           lambda p, n: read_p5_sequences(p, n or p.name)),
    Layout("MIND (news.tsv + behaviors.tsv, or split folders holding them)",
           lambda p: bool(mind_split_folders(p)), read_mind),
    Layout("Amazon reviews 2014/2018 (reviews_<Cat>_5.json[.gz] or <Cat>_5.json[.gz], + meta_<Cat>.json[.gz])",
           lambda p: find_review_file(p) is not None, lambda p, n: read_amazon_reviews(p, name=n)),
    Layout("RecBole atomic files (<name>.inter [+ .item, .user])", lambda p: _has(p, "*.inter"),
           lambda p, n: read_recbole(p, n)),
    Layout("Parquet tables (interactions.parquet with user, item, timestamp + catalog.parquet), as written by "
           "`arborec generate`", is_scale_folder, read_scale_folder),
)


def read_folder(path: str | Path, name: str | None = None) -> Dataset:
    """Read a folder in any supported layout (see :data:`LAYOUTS`), recognised by the files it holds.

    ``name`` defaults to the folder name (Amazon review files: ``amazon-<category>``; RecBole
    files: the atomic file stem, as in ``<name>.inter``).
    """
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(f"{path}: not a folder")
    for layout in LAYOUTS:
        if layout.detect(path):
            return layout.read(path, name)
    raise DatasetNotFoundError(f"{path}: no known dataset layout; recognised layouts: "
                               + "; ".join(layout.description for layout in LAYOUTS))


def describe_datasets(data_dir: str | Path | None = None) -> pd.DataFrame:
    """The registered datasets, one row each: ``name``, ``aliases``, ``description``, ``location``.

    ``location`` is the local folder where the dataset was found, ``"download"`` when it is not
    on this machine but can be downloaded, ``"not available offline"`` when it can be neither
    found nor downloaded, and ``"generated"`` for ``synthetic``. Nothing is downloaded.
    """
    rows = [{"name": "synthetic", "aliases": "", "description": "Generated users with a planted interest "
             "hierarchy (no files needed)", "location": "generated"}]
    for spec in {s.name: s for s in REGISTRY.values()}.values():
        local = find_local(spec.name, data_dir)
        location = str(local) if local is not None else ("download" if spec.remote else "not available offline")
        rows.append({"name": spec.name, "aliases": ", ".join(spec.aliases), "description": spec.description,
                     "location": location})
    return pd.DataFrame(rows, columns=["name", "aliases", "description", "location"])
