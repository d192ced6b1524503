"""`arborec demo`: arborec against two baselines on one dataset, two users' interest trees and explained picks, the report."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from arborec.diagnostics import DatasetNotFoundError, logger

#: fast settings: a few minutes on 2 CPU cores for MovieLens 100K (early stopping on validation NDCG@10)
FAST = {
    "arborec": {"max_epochs": 16, "patience": 2, "eval_every": 2},
    "sasrec": {"max_epochs": 30, "patience": 2, "eval_every": 2, "dropout": 0.2},
    "text": {},
}
LONG_HISTORIES = {"max_len": 200}  # MovieLens users have ~100 events: a longer window (as in the benchmarks)


def choose_threads() -> int:
    """Torch threads for the demo: every core on a quiet machine, one when other work already loads the
    cores (two spinning threads sharing busy cores are many times slower than one)."""
    import os

    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return 1 if busy >= cores / 2 else cores


def choose_data(data_dir: str | None) -> str:
    """"ml-100k" when its files are found (``data_dir``, $ARBOREC_DATA_DIR, the cache), else "synthetic"."""
    from arborec.data import load_dataset

    try:
        load_dataset("ml-100k", data_dir=data_dir)
        return "ml-100k"
    except DatasetNotFoundError as exc:
        logger.info("MovieLens 100K not found (%s)", exc)
        return "synthetic"


def full_histories(data):
    """Every user's whole history (all events, oldest first) as :class:`arborec.data.Histories`."""
    from arborec.data import Histories

    df = data.interactions
    indptr = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(df["user_idx"].to_numpy(), minlength=data.n_users), out=indptr[1:])
    return Histories(indptr, df["item_idx"].to_numpy().astype(np.int32))


def run_demo(data_dir: str | None = None, output_dir: str | Path = "runs/demo", n_users: int = 2,
             seed: int = 0, out=print) -> dict:
    """Run the demo; ``out`` prints the lines a person reads. Returns the paths written and the records."""
    from arborec.data import leave_one_out, load_prepared
    from arborec.evaluate import metric_table, run_model, write_json
    from arborec.model import save_fitted
    from arborec.profiles import ProfileBuilder, fit_segments, write_report
    from arborec.recommenders import make_model

    import torch

    t0 = time.perf_counter()
    output_dir = Path(output_dir)
    threads = choose_threads()
    torch.set_num_threads(threads)
    logger.info("torch threads: %d (load average %.1f on %d cores)", threads, __import__("os").getloadavg()[0],
                __import__("os").cpu_count() or 1)
    name = choose_data(data_dir)
    data = load_prepared(name, data_dir=data_dir)
    split = leave_one_out(data)
    out(f"== 1. data: {data.name} ({data.source})" + ("" if name == "ml-100k" else
        " -- MovieLens 100K was not found, so this is the SYNTHETIC dataset arborec generates, not real data"))
    out(f"   {data.n_users:,} users, {data.n_items:,} items, {data.stats['n_interactions']:,} events; "
        "chronological leave-one-out: the last event of each user is the test target, the one before it validation")

    out("\n== 2. fit arborec and two baselines (choices on validation; test read once per model)")
    records, models = [], {}
    for model_name in ("arborec", "sasrec", "text"):
        params = {**FAST[model_name], **(LONG_HISTORIES if name == "ml-100k" and model_name != "text" else {})}
        if model_name != "text":
            params["seed"] = seed
        out(f"   fitting {model_name} ...")
        captured = {}

        def build(**p):
            captured["model"] = make_model(model_name, **p)
            return captured["model"]

        record = run_model(build, split, data, params=params, seed=seed, command="arborec demo")
        write_json(record, output_dir / f"{name}-{model_name}.json")
        records.append(record)
        models[model_name] = captured["model"]
    out("\n" + metric_table(records))
    out("   arborec: the hierarchical long/short-term model; sasrec: self-attention over item IDs; "
        "text: the user's recent items' text vectors (MiniLM)")

    model = models["arborec"]
    bundle = save_fitted(model, data, output_dir / f"{name}-arborec")
    tree = model.tree_
    histories = full_histories(data)
    titles = (data.catalog["title"].astype(str).tolist() if "title" in data.catalog.columns
              else [str(i) for i in data.item_ids])
    profiles = ProfileBuilder(tree).fit_transform(histories, users=data.user_ids)
    users = pick_users(profiles, n_users)
    scores = model.score(users, _rows(histories, users))
    out(f"\n== 3. {len(users)} users: their interest tree and arborec's top 5, each with the interest it serves")
    for b, row in zip(users, scores):
        for line in describe_user(profiles.profile(int(b), vectors=model.vectors_), row, tree, titles,
                                  histories.sequence(int(b)), data.user_ids[b]):
            out(line)

    segmenter = fit_segments(profiles, seed=seed)  # the service's segments: same users, same numbers
    report = write_report(output_dir / "report.html", tree, profiles, segmenter, titles=titles,
                          vectors=model.vectors_, dataset=data.name, seed=seed)
    out(f"\n== 4. the interest report (tree, segments, users): {report}")
    out(f"   ({segmenter.n_segments_} user segments; open it in a browser, it needs no network)")
    data_flag = f"--data {name}" + (f" --data-dir {data_dir}" if data_dir else "")
    out(f"\n== done in {time.perf_counter() - t0:.0f} s. Go further:")
    out(f"   arborec serve --bundle {bundle} {data_flag}     # the service and its web page on http://127.0.0.1:8000/")
    out(f"   arborec recommend --bundle {bundle} --user {data.user_ids[users[0]]} --explain")
    out("   arborec fit --data ml-100k --param max_len=200         # the full training budget")
    out("   arborec suite --data-dir DIR --datasets ml-100k   # the benchmark suite: every model, 3 seeds, paired "
        "(docs/benchmarks.md)")
    return {"report": report, "bundle": bundle, "records": records, "users": [data.user_ids[b] for b in users]}


def _rows(histories, users):
    from arborec.data import Histories

    seqs = [histories.sequence(int(b)) for b in users]
    indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=indptr[1:])
    return Histories(indptr, np.concatenate(seqs).astype(np.int32))


def pick_users(profiles, n: int) -> np.ndarray:
    """``n`` users worth showing: at least 20 events, whose short-term top level-1 interest differs from
    their long-term one (the two time scales tell different stories), lowest user index first."""
    lengths = profiles.histories.lengths()
    long_top = np.asarray(profiles.long[0].argmax(axis=1)).ravel()
    short_top = np.asarray(profiles.short[0].argmax(axis=1)).ravel()
    good = np.flatnonzero((lengths >= 20) & (long_top != short_top))
    rest = np.flatnonzero(lengths >= 5)
    return np.concatenate([good, np.setdiff1d(rest, good)])[:n]


def describe_user(profile, scores: np.ndarray, tree, titles, history: np.ndarray, user_id) -> list[str]:
    """Lines: the user's interest tree (long vs short term, two levels) and the top 5 with reasons."""
    from arborec.profiles import explain

    lines = [f"\n-- user {user_id}: {len(history)} events; last: "
             + "; ".join(_short(titles[i]) for i in history[-3:][::-1])]
    lines.append("   interest tree (share of all events = long term | of the last 10 = short term)")
    long1, short1 = profile.long[0], profile.short[0]
    for node in np.argsort(-(long1 + short1))[:3]:
        if long1[node] + short1[node] < 0.05:
            break
        lines.append(f"   {tree.labels[0][node]:<44} long {long1[node]:>4.0%} | short {short1[node]:>4.0%}")
        if tree.n_levels > 1:
            kids = tree.children(1, int(node))
            long2, short2 = profile.long[1][kids], profile.short[1][kids]
            for j in np.argsort(-(long2 + short2))[:2]:
                if long2[j] + short2[j] >= 0.05:
                    lines.append(f"     > {_short(tree.labels[1][kids[j]], 40):<40} long {long2[j]:>4.0%} | "
                                 f"short {short2[j]:>4.0%}")
    scores = scores.copy()
    scores[history] = -np.inf
    lines.append("   top 5 by arborec:")
    for rank, item in enumerate(np.argsort(-scores, kind="stable")[:5], 1):
        why = explain(profile, int(item), tree, history=history)
        lines.append(f"   {rank}. {_short(titles[item], 60)}")
        lines.append(f"      {why.reason()}")
        if why.support:
            lines.append("      from your history: " + "; ".join(_short(titles[i], 40) for i in why.support[:3]))
    return lines


def _short(text: str, n: int = 50) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n - 1] + "…"
