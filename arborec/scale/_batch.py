"""Batch scoring and interest profiles of all users: top-k items and per-level profiles as Parquet (local or Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from arborec.data import Split
from arborec.diagnostics import check_param
from arborec.evaluate import top_k, users_per_chunk


def _block(model, split: Split, users: np.ndarray, k: int, stage: str, builder, n_nodes: int) -> dict:
    """Columns for one block of users: the k best unseen items with scores, and the top profile nodes per level."""
    hist = split.histories(stage, users)
    scores = np.array(model.score(users, hist), dtype=np.float32, copy=True)  # (B, n_items)
    rows = np.repeat(np.arange(len(users)), hist.lengths())
    scores[rows, hist.items] = -np.inf  # never recommend what the user has seen
    best = top_k(scores, k)  # (B, k) best first
    out = {"user_idx": users.astype(np.int32), "items": list(best.astype(np.int32)),
           "scores": list(np.take_along_axis(scores, best, axis=1))}
    if builder is not None:
        profiles = builder.transform(hist, users=users)
        for lv, dist in enumerate(profiles.combined, start=1):  # (B, n_nodes_l) sparse, rows sum to one
            dense = dist.toarray()
            top = top_k(dense.astype(np.float32), n_nodes)  # (B, m) strongest nodes first
            out[f"level{lv}_nodes"] = list(top.astype(np.int32))
            out[f"level{lv}_weights"] = list(np.take_along_axis(dense, top, axis=1).astype(np.float32))
    return out


def _check(split: Split, k: int, stage: str, n_nodes: int, batch_size: int) -> None:
    check_param("k", k, 1 <= k <= split.n_items, f"an integer in [1, n_items={split.n_items}]")
    check_param("stage", stage, stage in ("valid", "test"), "'valid' (training history) or 'test' (all but the "
                                                            "last event)")
    check_param("n_nodes", n_nodes, n_nodes >= 1, "an integer >= 1")
    check_param("batch_size", batch_size, batch_size >= 1, "an integer >= 1")


def batch_recommend(model, split: Split, k: int = 20, users: np.ndarray | None = None, stage: str = "test",
                    profiles=None, n_nodes: int = 3, batch_size: int = 1024,
                    output: str | Path | None = None) -> pd.DataFrame:
    """Top-k recommendations (and interest profiles) for many users, in this process.

    ``model`` is any fitted harness recommender (``score(users, histories)``); ``users`` defaults to
    every user; the history is what ``stage`` allows. ``profiles`` is an optional fitted
    :class:`arborec.profiles.ProfileBuilder`: each level's ``n_nodes`` strongest nodes of the combined
    profile are added (``level<l>_nodes``, ``level<l>_weights``). Returns one row per user, sorted by
    ``user_idx``: ``items`` (k item indices, best first) and ``scores``; written to ``output``
    (Parquet) when given.
    """
    _check(split, k, stage, n_nodes, batch_size)
    users = np.arange(split.n_users) if users is None else np.asarray(users)
    batch_size = users_per_chunk(split.n_items, batch_size)  # bounded (users, n_items) score blocks
    parts = [pd.DataFrame(_block(model, split, users[s:s + batch_size], k, stage, profiles, n_nodes))
             for s in range(0, len(users), batch_size)]
    table = pd.concat(parts, ignore_index=True)
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(output, index=False)
    return table


class _ScoringActor:
    """Holds the model, split and profile builder (from the object store) and scores blocks of users."""

    def __init__(self, model_ref, split_ref, builder_ref, k: int, stage: str, n_nodes: int, threads: int):
        import ray
        import torch

        torch.set_num_threads(threads)
        # Ray may hand the objects over already resolved, or as references.
        self.model, self.split, self.builder = (ray.get(x) if isinstance(x, ray.ObjectRef) else x
                                                for x in (model_ref, split_ref, builder_ref))
        self.k, self.stage, self.n_nodes = k, stage, n_nodes

    def __call__(self, batch: dict) -> dict:
        return _block(self.model, self.split, batch["user_idx"], self.k, self.stage, self.builder, self.n_nodes)


def batch_recommend_ray(model, split: Split, output: str | Path, k: int = 20, users: np.ndarray | None = None,
                        stage: str = "test", profiles=None, n_nodes: int = 3, batch_size: int = 1024,
                        actors: int = 2, threads_per_actor: int = 1) -> Path:
    """:func:`batch_recommend` as a Ray Data job: blocks of users to ``actors`` scoring actors, which
    write Parquet files into the folder ``output`` (read it with :func:`read_batch_output`).

    The fitted model, the split and the profile builder go to the object store once; every actor
    reads them. Must run inside :func:`ray_session` (or after ``ray.init``). Returns the folder.
    """
    import ray

    _check(split, k, stage, n_nodes, batch_size)
    check_param("actors", actors, actors >= 1, "an integer >= 1")
    users = np.arange(split.n_users) if users is None else np.asarray(users)
    batch_size = users_per_chunk(split.n_items, batch_size)  # each actor scores bounded (users, n_items) blocks
    refs = [ray.put(model), ray.put(split), ray.put(profiles)]
    blocks = [pd.DataFrame({"user_idx": users[s:s + batch_size].astype(np.int64)})
              for s in range(0, len(users), batch_size)]
    ds = ray.data.from_pandas(blocks)  # one block per task, made on the driver
    ds = ds.map_batches(_ScoringActor, batch_size=batch_size, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=threads_per_actor,
                        fn_constructor_args=refs,
                        fn_constructor_kwargs=dict(k=k, stage=stage, n_nodes=n_nodes, threads=threads_per_actor))
    output = Path(output)
    ds.write_parquet(str(output.resolve()))
    return output


def read_batch_output(path: str | Path) -> pd.DataFrame:
    """A Parquet file or folder written by :func:`batch_recommend` / :func:`batch_recommend_ray`, sorted by user."""
    table = pd.read_parquet(path)
    return table.sort_values("user_idx", kind="stable").reset_index(drop=True)
