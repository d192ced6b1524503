"""Prepared datasets cached as Parquet, keyed by dataset, source and preprocessing config."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from arborec.data._prepare import PrepareConfig, PreparedData, prepare
from arborec.data._registry import cache_dir, load_dataset
from arborec.diagnostics import logger


def load_prepared(name_or_folder: str, data_dir: str | Path | None = None, config: PrepareConfig | None = None,
                  use_cache: bool = True) -> PreparedData:
    """Load and prepare a dataset, reusing the Parquet cache when the same preparation was done before.

    The cache key covers the dataset's name, where its files were read from (and their sizes and
    modification times), and every preprocessing parameter.
    """
    config = config or PrepareConfig()
    dataset = None
    if name_or_folder == "synthetic":
        key_src = "generated"
    else:
        dataset = load_dataset(name_or_folder, data_dir=data_dir)
        key_src = _source_signature(dataset.source)
    key = hashlib.sha256(json.dumps([name_or_folder, key_src, asdict(config)], sort_keys=True).encode()).hexdigest()
    folder = cache_dir() / "prepared" / f"{Path(name_or_folder).name}-{key[:12]}"
    if use_cache and (folder / "manifest.json").exists():
        logger.info("prepared %s read from cache %s", name_or_folder, folder)
        data = PreparedData.load(folder)
        data.source = dataset.source if dataset is not None else "generated"
        return data
    if dataset is None:
        dataset = load_dataset(name_or_folder, data_dir=data_dir)
    data = prepare(dataset, config)
    if use_cache:
        data.save(folder)
    return data


def _source_signature(source: str) -> list:
    path = Path(source)
    if not path.is_dir():
        return [source]
    return [source] + sorted([p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in path.iterdir() if p.is_file())
