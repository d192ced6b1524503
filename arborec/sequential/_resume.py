"""A training loop's whole state in one file, so that a stopped fit continues where it was instead of starting over."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from arborec.data import private_tmp
from arborec.diagnostics import logger

FORMAT = 1


def run_key(model, split) -> str:
    """What a saved state belongs to: the model class, its parameters (but where it runs and what it prints) and
    the split's content. A state saved under another key is not resumed."""
    params = {k: v for k, v in model.get_params().items() if k not in ("device", "verbose")}
    text = json.dumps({"model": type(model).__name__, "params": params, "split": split.fingerprint()},
                      sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def save_state(path: str | Path, key: str, state: dict) -> None:
    """Write ``state`` (tensors and plain Python values in lists and dicts) to ``path`` atomically: a stop mid-write
    keeps the previous one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(path)
    torch.save({"format": FORMAT, "key": key, **state}, tmp)
    os.replace(tmp, path)


def load_state(path: str | Path | None, key: str) -> dict | None:
    """The state saved at ``path`` for ``key``; None (and a warning, when a file is there) when there is none to
    resume: no file, a file of another run, or an unreadable one."""
    if path is None or not Path(path).exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values: no pickled code
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: start over, say why
        logger.warning("training state %s could not be read (%s): training starts from the beginning", path, exc)
        return None
    if state.get("format") != FORMAT or state.get("key") != key:
        logger.warning("training state %s belongs to another run (other parameters or data): training starts "
                       "from the beginning", path)
        return None
    return state


def resuming(model, path: str | Path | None):
    """``model``, set to keep its training state at ``path`` and continue from it (epoch-trained models only: others
    are returned as they are)."""
    from arborec.sequential._recommender import SequentialRecommender

    if path is not None and isinstance(model, SequentialRecommender):
        model.resume_path = path
    return model
