"""Named datasets: where to find them locally, how to read them, and (helper-extended) where to download them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import platformdirs

from arborec.data._tables import Dataset
from arborec.data.amazon import read_p5_sequences
from arborec.data.movielens import read_ml100k
from arborec.data.synthetic import make_synthetic
from arborec.diagnostics import DatasetNotFoundError

DATA_DIR_ENV = "ARBOREC_DATA_DIR"


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: how to read its local folder, and what identifies that folder."""

    name: str
    read: Callable[[Path], Dataset]
    marker: str  # a file that must be in the folder
    description: str
    aliases: tuple[str, ...] = field(default_factory=tuple)


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> None:
    REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        REGISTRY[alias] = spec


register(DatasetSpec("ml-100k", read_ml100k, "u.data", "MovieLens 100K: 943 users, 1,682 movies, 100k ratings",
                     aliases=("movielens-100k",)))
register(DatasetSpec("amazon-beauty", lambda p: read_p5_sequences(p, "amazon-beauty"), "user_sequence.txt",
                     "Amazon Beauty 5-core (P5 user_sequence.txt + RecBole Amazon_Beauty.item)",
                     aliases=("beauty",)))


def cache_dir() -> Path:
    """Where downloads and prepared data are cached (``ARBOREC_CACHE_DIR`` overrides)."""
    return Path(os.environ.get("ARBOREC_CACHE_DIR") or platformdirs.user_cache_dir("arborec"))


def search_folders(data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for ``<name>/``, in order: the argument, ``$ARBOREC_DATA_DIR``, the cache."""
    folders = []
    if data_dir:
        folders.append(Path(data_dir))
    if os.environ.get(DATA_DIR_ENV):
        folders.extend(Path(p) for p in os.environ[DATA_DIR_ENV].split(os.pathsep) if p)
    folders.append(cache_dir() / "datasets")
    return folders


def load_dataset(name_or_folder: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Load a dataset by registered name (``"ml-100k"``, ``"synthetic"``...) or from a folder path.

    A name is looked for as ``<folder>/<name>/`` in :func:`search_folders`.
    """
    if name_or_folder == "synthetic":
        return make_synthetic()
    spec = REGISTRY.get(name_or_folder)
    if spec is None:
        path = Path(name_or_folder)
        if path.is_dir():
            return read_folder(path)
        known = ", ".join(sorted({s.name for s in REGISTRY.values()} | {"synthetic"}))
        raise DatasetNotFoundError(f"{name_or_folder!r} is neither a known dataset ({known}) nor a folder")
    looked = []
    for folder in search_folders(data_dir):
        candidate = folder / spec.name
        looked.append(str(candidate))
        if (candidate / spec.marker).exists():
            return spec.read(candidate)
    raise DatasetNotFoundError(
        f"dataset {spec.name!r} not found: looked for {spec.marker} in {', '.join(looked)}. "
        f"Put the files in one of them, or pass --data-dir / set {DATA_DIR_ENV}."
    )


def read_folder(path: Path) -> Dataset:
    """Read a folder in any supported layout, recognised by the files it holds."""
    for spec in {s.name: s for s in REGISTRY.values()}.values():
        if (path / spec.marker).exists():
            return spec.read(path)
    raise DatasetNotFoundError(f"{path}: no known dataset layout (looked for "
                               f"{', '.join(sorted({s.marker for s in REGISTRY.values()}))})")
