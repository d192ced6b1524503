"""Export arborec's chronological leave-one-out split as RecBole atomic files.

Runs in arborec's own environment. For ``--data ml-100k`` it writes, into ``benchmarks/work/``
(git-ignored; the data's terms forbid redistribution, so nothing here goes into tracked folders)::

    work/arborec-ml-100k/arborec-ml-100k.inter   user_id:token  item_id:token  timestamp:float
    work/arborec-ml-100k/split.npz               our split (train CSR, valid/test targets)
    work/arborec-ml-100k/split.json              fingerprint, counts, preparation stats

Tokens are arborec's dense indices (``user_idx``, ``item_idx``) written as strings. The timestamp
is the event's position in the user's time-ordered sequence (0, 1, 2, ...): the training items,
then the validation target, then the test target. With ``eval_args: {split: {LS:
valid_and_test}, order: TO, group_by: user}`` RecBole then cuts exactly our split (its own
stable sort by time can only reorder events of *different* users, and the positions of one user
are distinct). ``run_recbole.py`` checks this after RecBole has built its datasets.

The RecBole dataset is named ``arborec-<dataset>`` so that RecBole does not apply its built-in
presets for its own ``ml-100k`` (which would normalise the timestamp and load a rating column).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from arborec.data import leave_one_out, load_dataset, prepare

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = HERE.parent / "work"


def recbole_name(dataset: str) -> str:
    return f"arborec-{dataset}"


def export(dataset: str, data_dir: str | None, work: Path) -> dict:
    t0 = time.perf_counter()
    data = prepare(load_dataset(dataset, data_dir=data_dir))
    split = leave_one_out(data)

    users = data.interactions["user_idx"].to_numpy().astype(np.int64)
    items = data.interactions["item_idx"].to_numpy().astype(np.int64)
    counts = np.bincount(users, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(users)) - np.repeat(starts, counts)

    # Self-check: the exported sequences, cut the way RecBole cuts them, are our split.
    n_train = split.train_lengths()
    evaluated = split.valid_target >= 0
    if not np.array_equal(n_train + 2 * evaluated, counts):
        raise AssertionError("train + valid + test counts differ from the prepared interactions")
    is_train = position < np.repeat(n_train, counts)
    if not np.array_equal(items[is_train], split.train_items):
        raise AssertionError("exported training items differ from split.train_items")
    last = np.cumsum(counts) - 1
    if not (np.array_equal(items[last[evaluated]], split.test_target[evaluated])
            and np.array_equal(items[last[evaluated] - 1], split.valid_target[evaluated])):
        raise AssertionError("exported targets differ from the split's targets")

    name = recbole_name(dataset)
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    inter = folder / f"{name}.inter"
    with inter.open("w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        np.savetxt(f, np.stack([users, items, position], axis=1), fmt="%d", delimiter="\t")

    np.savez(folder / "split.npz", train_indptr=split.train_indptr, train_items=split.train_items,
             valid_target=split.valid_target, test_target=split.test_target,
             n=np.array([split.n_users, split.n_items], dtype=np.int64))
    short = {int(k): int((counts == k).sum()) for k in (1, 2)}
    meta = {
        "dataset": dataset,
        "recbole_dataset": name,
        "split_hash": split.fingerprint(),
        "n_users": int(split.n_users),
        "n_items": int(split.n_items),
        "n_interactions": int(len(users)),
        "n_train": int(len(split.train_items)),
        "n_valid": int(evaluated.sum()),
        "n_test": int((split.test_target >= 0).sum()),
        "users_with_1_event": short[1],
        "users_with_2_events": short[2],
        "max_events_per_user": int(counts.max()),
        "dataset_stats": data.stats,
        "prepare_config": vars(data.config),
        "files": {"inter": str(inter), "split": str(folder / "split.npz")},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    (folder / "split.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{dataset}: wrote {inter} ({len(users)} events, {split.n_users} users, {split.n_items} items; "
          f"train {meta['n_train']}, valid {meta['n_valid']}, test {meta['n_test']}; "
          f"split {meta['split_hash']}) in {time.perf_counter() - t0:.1f}s")
    if short[1] or short[2]:
        print(f"note: {short[1]} users with 1 event and {short[2]} with 2 events: see README (Short users)")
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", required=True, help="dataset names, e.g. ml-100k amazon-beauty")
    p.add_argument("--data-dir", default=None, help="folder holding <dataset>/ (default: arborec's search path)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"output folder (default {DEFAULT_WORK})")
    args = p.parse_args(argv)
    for name in args.data:
        export(name, args.data_dir, args.work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
