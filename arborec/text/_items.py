"""encode_items: a catalogue's text vectors, computed once per (model, text) and cached."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from arborec.diagnostics import logger
from arborec.text._cache import VectorCache, text_key
from arborec.text._encoder import TextEncoder
from arborec.text._render import ItemTextTemplate, render_items


def encode_items(catalog: pd.DataFrame, encoder: TextEncoder | None = None,
                 template: ItemTextTemplate | None = None, cache_dir: str | Path | None = None,
                 use_cache: bool = True, progress: bool = False, out: str | Path | None = None,
                 chunk_items: int = 50_000) -> np.ndarray:
    """(n_items, dim) float32 L2-normalised vectors, row i for catalog row i.

    Texts already in the cache for this (model, precision) are read back; only new texts are
    encoded (adding 100 items encodes 100), and they are added to the cache. The catalogue goes
    through in chunks of ``chunk_items``; with ``out`` (a ``.npy`` path) each chunk's vectors are
    written straight into that file and a read-only memory map of it is returned, so a 1M-item
    catalogue (1.5 GB at dim 384) never has to sit in memory (read it again with
    ``np.load(out, mmap_mode="r")``).
    A catalogue without item text gets the vector of the empty text for every item (see
    :func:`render_items`).
    """
    from arborec.data import cache_dir as default_cache_dir

    encoder = encoder or TextEncoder()
    texts = render_items(catalog, template)
    keys = [text_key(t) for t in texts]
    cache = VectorCache(Path(cache_dir or default_cache_dir() / "vectors") / encoder.model_key) if use_cache else None
    vectors = None

    def rows(dim: int) -> np.ndarray:  # the result, made when the dimension is first known
        nonlocal vectors
        if vectors is None:
            vectors = (np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(len(texts), dim))
                       if out is not None else np.zeros((len(texts), dim), dtype=np.float32))
        return vectors

    n_found = n_new = 0
    seconds = 0.0
    for s in range(0, len(texts), chunk_items):
        chunk = keys[s:s + chunk_items]
        found, cached = cache.lookup(chunk) if cache is not None else (np.zeros(len(chunk), bool), None)
        if cached is not None:
            hit = np.flatnonzero(found)
            rows(cached.shape[1])[s + hit] = cached[hit]
        todo = np.flatnonzero(~found)
        n_found, n_new = n_found + int(found.sum()), n_new + len(todo)
        if not len(todo):
            continue
        t0 = time.perf_counter()
        unique_texts, inverse = np.unique(np.array([texts[s + i] for i in todo], dtype=object), return_inverse=True)
        new = encoder.encode(list(unique_texts), progress=progress)[inverse]
        rows(new.shape[1])[s + todo] = new
        if cache is not None:
            cache.add([chunk[i] for i in todo], new)
        seconds += time.perf_counter() - t0
    if n_new:
        logger.info("encoded %d item texts with %s (%s) in %.1f s (%.0f items/s); %d from cache",
                    n_new, encoder.model, encoder.backend_, seconds, n_new / max(seconds, 1e-9), n_found)
    else:
        logger.info("all %d item vectors read from cache", len(texts))
    if out is not None and vectors is not None:
        vectors.flush()
        return np.load(out, mmap_mode="r")
    return vectors
