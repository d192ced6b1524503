"""The fastest CPU path: a static-embedding model (model2vec) distilled offline from the sentence encoder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from arborec.diagnostics import ConfigError, logger

PCA_DIMS = 256  # model2vec's default width after distillation


def static_model(model_path: str, folder: Path, pca_dims: int | None = PCA_DIMS):
    """A model2vec ``StaticModel`` distilled from the sentence-transformers model at ``model_path``.

    Distillation (every token of the vocabulary through the encoder once, then PCA) runs once, with
    no network, and takes a few minutes on two CPU cores; the result is saved in ``folder`` and read
    from there afterwards (well under a second).
    """
    try:
        from model2vec import StaticModel
    except ImportError:
        raise ConfigError('the "static" text backend needs model2vec: pip install "model2vec[distill]"') from None
    if (folder / "config.json").exists():
        return StaticModel.from_pretrained(str(folder))
    from model2vec.distill import distill

    t0 = time.perf_counter()
    logger.info("distilling a static model from %s (once; cached in %s)", model_path, folder)
    model = distill(model_name=model_path, pca_dims=pca_dims)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    logger.info("distilled in %.0f s", time.perf_counter() - t0)
    return model


def encode_static(model, texts: list[str], batch_size: int = 1024) -> np.ndarray:
    """(n, d) float32 vectors of ``texts`` (mean of the static token vectors; normalised by the caller)."""
    return np.asarray(model.encode(texts, batch_size=batch_size, show_progress_bar=False), dtype=np.float32)
