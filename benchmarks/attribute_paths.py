"""Anonymous attribute paths (Amazon Sports): nesting chains vs plain frequency order, judged by user behaviour.

    python benchmarks/attribute_paths.py --data-dir ../shared/data

For each way of ordering an item's attribute ids into a path, builds the category tree (3 levels)
and measures, per level, the NMI between the nodes of consecutive items in the users' training
sequences (each user's last two events, the validation and test targets, are left out): how well
a level's nodes follow what users move between. Writes results/attribute_paths_amazon-sports.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from arborec.data import load_dataset, prepare
from arborec.data.p5 import ATTRIBUTE_PREFIX, attribute_paths
from arborec.evaluate import machine
from arborec.hierarchy import tree_from_categories

RESULTS = Path(__file__).resolve().parent / "results"


def frequency_paths(attributes: list[list[str]]) -> list[list[str]]:
    """Each item's distinct attributes, most frequent first (ties: the smaller id)."""
    sets = [set(values) for values in attributes]
    count = Counter(a for values in sets for a in values)
    return [[ATTRIBUTE_PREFIX + a for a in sorted(values, key=lambda a: (-count[a], int(a)))] for values in sets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    data = prepare(load_dataset("amazon-sports", data_dir=args.data_dir, download=False))
    inter = data.interactions
    pairs = []
    for _, events in inter.groupby("user_idx", sort=False)["item_idx"]:
        train = events.to_numpy()[:-2]
        pairs.append(np.stack([train[:-1], train[1:]], axis=1))
    pairs = np.concatenate(pairs)
    raw = json.loads((Path(data.source) / "item_attributes.json").read_text())
    attributes = [[str(a) for a in raw[item]] for item in data.item_ids]  # row i: item_idx i
    t0 = time.perf_counter()
    chains = attribute_paths(attributes)
    seconds = time.perf_counter() - t0
    lines = ["# Anonymous attribute paths on Amazon Sports", "",
             f"`python benchmarks/attribute_paths.py`; {machine()['cpus']} CPU cores (shared); "
             f"{len(pairs):,} consecutive training pairs; "
             f"attribute_paths took {seconds:.2f} s for {data.n_items:,} items.", "",
             "NMI between the tree nodes of consecutive items in users' training sequences (higher: the level's "
             "nodes follow behaviour better).", "",
             "| paths | level 1 | level 2 | level 3 | nodes per level |", "|---|---|---|---|---|"]
    for name, paths in (("frequency order", frequency_paths(attributes)), ("nesting chains (the loader's)", chains)):
        tree = tree_from_categories(data.catalog.assign(category_path=paths), max_depth=3)
        nmi = [normalized_mutual_info_score(tree.codes[pairs[:, 0], lv], tree.codes[pairs[:, 1], lv])
               for lv in range(tree.n_levels)]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in nmi) + f" | {tree.level_sizes} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "attribute_paths_amazon-sports.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
