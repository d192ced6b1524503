"""Item encoding as a Ray Data job: batches of item texts to encoder actors, filling the same vector cache."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from arborec.diagnostics import check_param, logger
from arborec.text import ItemTextTemplate, TextEncoder, VectorCache, render_items, text_key


class _EncoderActor:
    """One text model per actor, loaded once; called on batches of (row, text)."""

    def __init__(self, model: str, backend: str, batch_size: int, max_tokens: int, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.encoder = TextEncoder(model, backend=backend, batch_size=batch_size, max_tokens=max_tokens,
                                   threads=threads)

    def __call__(self, batch: dict) -> dict:
        vectors = self.encoder.encode([str(t) for t in batch["text"]])  # (b, dim)
        return {"row": batch["row"], "vector": vectors}


def encode_items_ray(catalog: pd.DataFrame, encoder: TextEncoder | None = None,
                     template: ItemTextTemplate | None = None, cache_dir: str | Path | None = None,
                     actors: int = 2, threads_per_actor: int = 1, rows_per_task: int | None = None,
                     use_cache: bool = True) -> np.ndarray:
    """:func:`arborec.text.encode_items` on Ray: the same (n_items, dim) vectors and the same cache.

    The driver renders texts and looks them up in the vector cache (keyed by model, precision and
    text hash, exactly as the local path); the texts not found are encoded by ``actors`` encoder
    actors (``threads_per_actor`` CPUs each) in a Ray Data job; the new vectors are added to the
    cache, so a later local run reads them back. Must run inside :func:`ray_session` (or after
    ``ray.init``). The backend ``"auto"`` is resolved on the driver so every actor uses the same
    precision.
    """
    import ray

    from arborec.data import cache_dir as default_cache_dir

    check_param("actors", actors, actors >= 1, "an integer >= 1")
    check_param("threads_per_actor", threads_per_actor, threads_per_actor >= 1, "an integer >= 1")
    encoder = encoder or TextEncoder()
    backend = encoder.backend_ if encoder.precision and encoder.backend_ else encoder.backend  # "auto" resolved
    texts = render_items(catalog, template)
    keys = [text_key(t) for t in texts]
    cache = VectorCache(Path(cache_dir or default_cache_dir() / "vectors") / encoder.model_key) if use_cache else None
    found, vectors = cache.lookup(keys) if cache is not None else (np.zeros(len(keys), bool), None)
    todo = np.flatnonzero(~found)
    if not len(todo):
        logger.info("all %d item vectors read from cache", len(texts))
        return vectors
    t0 = time.perf_counter()
    unique_texts, inverse = np.unique(np.array([texts[i] for i in todo], dtype=object), return_inverse=True)
    order = np.argsort([len(t) for t in unique_texts], kind="stable")  # similar lengths together: little padding
    rows_per_task = rows_per_task or (encoder.batch_size or 64) * 16
    table = pd.DataFrame({"row": order.astype(np.int64), "text": unique_texts[order].astype(str)})
    # one block per task, made on the driver (a repartition would need a free CPU beside the actors)
    ds = ray.data.from_pandas([table.iloc[s:s + rows_per_task] for s in range(0, len(table), rows_per_task)])
    ds = ds.map_batches(_EncoderActor, batch_size=rows_per_task, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=threads_per_actor,
                        fn_constructor_kwargs=dict(model=encoder.model, backend=backend,
                                                   batch_size=encoder.batch_size, max_tokens=encoder.max_tokens,
                                                   threads=threads_per_actor))
    new = None
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        if new is None:
            new = np.zeros((len(unique_texts), batch["vector"].shape[1]), dtype=np.float32)
        new[batch["row"]] = batch["vector"]
    new = new[inverse]
    if vectors is None:
        vectors = np.zeros((len(texts), new.shape[1]), dtype=np.float32)
    vectors[todo] = new
    if cache is not None:
        cache.add([keys[i] for i in todo], new)
    seconds = time.perf_counter() - t0
    logger.info("encoded %d item texts on Ray (%d actors, %s) in %.1f s (%.0f items/s); %d from cache",
                len(todo), actors, backend, seconds, len(todo) / max(seconds, 1e-9), int(found.sum()))
    return vectors
