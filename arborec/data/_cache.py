"""Prepared datasets cached as Parquet, keyed by dataset, source and preprocessing config."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from arborec.data._prepare import PrepareConfig, PreparedData, prepare
from arborec.data._registry import REGISTRY, cache_dir, find_local, load_dataset
from arborec.diagnostics import logger


def load_prepared(name_or_folder: str, data_dir: str | Path | None = None, config: PrepareConfig | None = None,
                  use_cache: bool = True, columns: dict[str, str] | None = None,
                  catalog: str | Path | None = None) -> PreparedData:
    """Load and prepare a dataset, reusing the Parquet cache when the same preparation was done before.

    ``name_or_folder`` is what `load_dataset` takes (a name, a folder, or a table file of events, whose
    ``columns`` mapping and ``catalog`` table it passes on). The cache key covers the dataset's name,
    where its files were read from (and their sizes and modification times), the column mapping and
    every preprocessing parameter.
    """
    config = config or PrepareConfig()
    dataset = None
    if name_or_folder == "synthetic":
        source = "generated"
    elif name_or_folder in REGISTRY:
        folder = find_local(name_or_folder, data_dir)
        if folder is None:  # not here: load_dataset downloads it (or says why it cannot)
            dataset = load_dataset(name_or_folder, data_dir=data_dir)
            folder = Path(dataset.source)
        source = str(folder)
    else:
        source = str(Path(name_or_folder).resolve())
    key_src = _source_signature(source) + (_source_signature(str(Path(catalog).resolve())) if catalog else [])
    table = [dict(columns or {})] if columns or catalog else []  # absent for the other sources: their keys stay
    key = hashlib.sha256(json.dumps([name_or_folder, key_src, asdict(config), *table],
                                    sort_keys=True).encode()).hexdigest()
    cached = cache_dir() / "prepared" / f"{Path(name_or_folder).name}-{key[:12]}"
    if use_cache and (cached / "manifest.json").exists():
        logger.info("prepared %s read from cache %s", name_or_folder, cached)
        data = PreparedData.load(cached)
        data.source = source
        return data
    if dataset is None:
        dataset = load_dataset(name_or_folder, data_dir=data_dir, columns=columns, catalog=catalog)
    data = prepare(dataset, config)
    if use_cache:
        data.save(cached)
    return data


def _source_signature(source: str) -> list:
    path = Path(source)
    if path.is_file():
        return [source, path.stat().st_size, int(path.stat().st_mtime)]
    if not path.is_dir():
        return [source]
    return [source] + sorted([p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in path.iterdir() if p.is_file())
