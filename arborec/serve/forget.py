"""Forgetting outside the service: a dataset without the users a store has deleted, and a bundle without a user."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from arborec.diagnostics import ConfigError, logger


def without_forgotten(data, store):
    """``data`` (a PreparedData) without the interactions of the users ``store`` (a `Store`) has deleted.

    Users are re-numbered (the order kept); items and the catalogue are unchanged. What `arborec fit
    --forget-store URL` trains on.
    """
    gone = store.forgotten(map(str, data.user_ids))
    if not gone:
        return data
    keep = ~np.isin(np.asarray(data.user_ids).astype(str), list(gone))  # (n_users,)
    new_index = np.cumsum(keep) - 1
    inter = data.interactions[keep[data.interactions["user_idx"].to_numpy()]].reset_index(drop=True)
    inter["user_idx"] = new_index[inter["user_idx"].to_numpy()].astype(np.int32)
    stats = {**data.stats, "dropped_forgotten_users": len(gone), "n_users": int(keep.sum()),
             "n_interactions": int(len(inter))}
    logger.info("%s: %d forgotten user(s) left out (%d interactions)", data.name, len(gone),
                len(data.interactions) - len(inter))
    return replace(data, interactions=inter, user_ids=np.asarray(data.user_ids)[keep], stats=stats)


def forget_in_bundle(path: str | Path, user_ids: list[str]) -> int:
    """Rewrite the bundle at ``path`` without the histories of ``user_ids``; returns how many were there.

    Only bundles written with known histories (`arborec fit --keep-histories`) hold any; the others
    (the default) hold model weights and item data only, and are left as they are.
    """
    from arborec.model._bundle import HISTORIES, USERS

    path = Path(path)
    if not (path / "config.json").exists():
        raise ConfigError(f"{path} is not an arborec bundle (no config.json in it)")
    if not (path / HISTORIES).exists():
        return 0
    ids = json.loads((path / USERS).read_text())
    arrays = np.load(path / HISTORIES)
    indptr, items = arrays["indptr"], arrays["items"]
    drop = set(map(str, user_ids))
    keep = [b for b, u in enumerate(ids) if str(u) not in drop]
    if len(keep) == len(ids):
        return 0
    lengths = np.diff(indptr)[keep]
    new_indptr = np.zeros(len(keep) + 1, dtype=indptr.dtype)
    np.cumsum(lengths, out=new_indptr[1:])
    new_items = np.concatenate([items[indptr[b]:indptr[b + 1]] for b in keep]) if keep else items[:0]
    for name in (USERS, HISTORIES):  # written anew, not patched: nothing of the old file remains
        (path / name).unlink()
    (path / USERS).write_text(json.dumps([ids[b] for b in keep]) + "\n")
    np.savez(path / HISTORIES, indptr=new_indptr, items=new_items)
    return len(ids) - len(keep)
