"""encode_items: a catalogue's text vectors, computed once per (model, text) and cached."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from arborec.diagnostics import logger
from arborec.text._cache import VectorCache, text_key
from arborec.text._encoder import TextEncoder
from arborec.text._render import ItemTextTemplate


def encode_items(catalog: pd.DataFrame, encoder: TextEncoder | None = None,
                 template: ItemTextTemplate | None = None, cache_dir: str | Path | None = None,
                 use_cache: bool = True, progress: bool = False) -> np.ndarray:
    """(n_items, dim) float32 L2-normalised vectors, row i for catalog row i.

    Texts already in the cache for this (model, precision) are read back; only new texts are
    encoded (adding 100 items encodes 100), and they are added to the cache.
    """
    from arborec.data import cache_dir as default_cache_dir

    encoder = encoder or TextEncoder()
    template = template or ItemTextTemplate()
    texts = template.render(catalog)
    keys = [text_key(t) for t in texts]
    cache = VectorCache(Path(cache_dir or default_cache_dir() / "vectors") / encoder.model_key) if use_cache else None
    found, vectors = cache.lookup(keys) if cache is not None else (np.zeros(len(keys), bool), None)
    todo = np.flatnonzero(~found)
    if len(todo):
        t0 = time.perf_counter()
        unique_texts, inverse = np.unique(np.array([texts[i] for i in todo], dtype=object), return_inverse=True)
        new = encoder.encode(list(unique_texts), progress=progress)[inverse]
        if vectors is None:
            vectors = np.zeros((len(texts), new.shape[1]), dtype=np.float32)
        vectors[todo] = new
        if cache is not None:
            cache.add([keys[i] for i in todo], new)
        seconds = time.perf_counter() - t0
        logger.info("encoded %d item texts with %s (%s) in %.1f s (%.0f items/s); %d from cache",
                    len(todo), encoder.model, encoder.backend_, seconds, len(todo) / max(seconds, 1e-9),
                    int(found.sum()))
    else:
        logger.info("all %d item vectors read from cache", len(texts))
    return vectors
