"""Saving a fitted `ArboRec` as a self-contained folder (safetensors weights, JSON config, item index, tree, vectors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from arborec.diagnostics import ConfigError

WEIGHTS, CONFIG, ITEMS, TREE, VECTORS, COUNTS, USERS, HISTORIES = (
    "model.safetensors", "config.json", "items.json", "tree.npz", "vectors.npy", "item_counts.npy", "users.json",
    "histories.npz")


def save_bundle(model, path: str | Path, item_ids=None, user_ids=None, histories=None) -> Path:
    """Write ``model`` (a fitted :class:`ArboRec`) to the folder ``path``; returns it.

    ``item_ids``: external id of each item index (default: the indices). ``user_ids`` and
    ``histories`` (a :class:`arborec.data.Histories`, one row per user): optional known histories,
    so that ``arborec recommend --user ID`` works from the bundle alone.
    """
    from safetensors.torch import save_file

    model._check_fitted("module_")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.module_.state_dict().items()}, str(path / WEIGHTS))
    (path / CONFIG).write_text(json.dumps(model.config_dict(), indent=1, default=str) + "\n")
    ids = [str(i) for i in (item_ids if item_ids is not None else range(model.n_items_))]
    if len(ids) != model.n_items_:
        raise ConfigError(f"item_ids has {len(ids)} entries, expected {model.n_items_}")
    (path / ITEMS).write_text(json.dumps(ids) + "\n")
    model.tree_.save(path / TREE)
    np.save(path / VECTORS, model.vectors_)
    np.save(path / COUNTS, np.asarray(model.item_counts_, dtype=np.int64))
    for stale in (USERS, HISTORIES):  # a folder written before (with histories) keeps none it was not given
        if histories is None and (path / stale).exists():
            (path / stale).unlink()
    if histories is not None:
        (path / USERS).write_text(json.dumps([str(u) for u in user_ids]) + "\n")
        np.savez(path / HISTORIES, indptr=histories.indptr, items=histories.items)
    return path


def save_fitted(model, data, path: str | Path, keep_histories: bool = False) -> Path:
    """``save_bundle`` for a model fitted on the prepared ``data``: its item ids and, only when
    ``keep_histories``, every known event (ordered by user, then time) as the users' histories.

    By default a bundle carries model weights and item data, not users' raw histories (personal data):
    serving reads histories from the dataset (``--data``) or the store instead.
    """
    from arborec.data import Histories

    if not keep_histories:
        return save_bundle(model, path, item_ids=data.catalog["item"])
    inter = data.interactions
    indptr = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(inter["user_idx"].to_numpy(), minlength=data.n_users), out=indptr[1:])
    return save_bundle(model, path, item_ids=data.catalog["item"], user_ids=data.user_ids,
                       histories=Histories(indptr, inter["item_idx"].to_numpy(np.int32)))


def load_bundle(path: str | Path):
    """A ready :class:`ArboRec` from a bundle folder (no dataset needed).

    Also sets ``item_ids_`` (list of str) and, when the bundle has them, ``user_ids_`` and
    ``user_histories_`` (:class:`arborec.data.Histories`).
    """
    import torch
    from safetensors.torch import load_file

    from arborec.data import Histories
    from arborec.hierarchy import InterestTree
    from arborec.model._network import ArboRecConfig
    from arborec.model._recommender import ArboRec, _module_from

    path = Path(path)
    if not (path / WEIGHTS).exists() or not (path / CONFIG).exists():
        raise ConfigError(f"{path} is not an arborec bundle (no {WEIGHTS} / {CONFIG} in it)")
    config = json.loads((path / CONFIG).read_text())
    if "path_weight_" in config:  # 0.1 ranked with a tree score term and tree-shaped states
        raise ConfigError(f"{path} was written by an arborec whose ranking used the interest tree (before 0.2); "
                          "it cannot be read by this version: fit it again with `arborec fit`")
    known = ArboRec().get_params()  # bundles written before a parameter was removed: that parameter was off in them
    model = ArboRec(**{k: v for k, v in config["params"].items() if k in known})
    fields = set(ArboRecConfig.__dataclass_fields__)
    model.config_ = ArboRecConfig(**{k: v for k, v in config["network"].items() if k in fields})
    model.tree_ = InterestTree.load(path / TREE)
    model.vectors_ = np.load(path / VECTORS)
    model.item_counts_ = np.load(path / COUNTS)
    model.n_items_ = int(config["n_items"])
    model.text_weight_ = float(config.get("text_weight_", 0.0))  # bundles written before the text term
    model.pointer_weight_ = float(config.get("pointer_weight_", 0.0))  # ... and before the text pointer
    model.pointer_temperature_ = float(config.get("pointer_temperature_", 1.0))
    network = config["network"]  # bundles written before the data-fitted defaults: the network says it
    model.max_len_ = int(config.get("max_len_", network["max_len"]))
    model.has_text_ = bool(config.get("has_text_", True))
    model.has_tree_ = bool(config.get("has_tree_", True))
    model.regime_ = config.get("regime_", "every")  # bundles written before the regime was chosen: every position
    model.tree_in_items_ = bool(model.config_.use_tree)
    model.defaults_ = config.get("defaults_", "")
    model.module_ = _module_from(model.config_, model.vectors_, model.tree_, model.item_counts_ >= 1)
    model.module_.load_state_dict(load_file(str(path / WEIGHTS)))
    model.module_.to(torch.device(model.device)).eval()
    model.item_ids_ = json.loads((path / ITEMS).read_text())
    if (path / HISTORIES).exists():
        arrays = np.load(path / HISTORIES)
        model.user_ids_ = json.loads((path / USERS).read_text())
        model.user_histories_ = Histories(arrays["indptr"], arrays["items"])
    return model
