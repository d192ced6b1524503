"""Does a learned interest tree recover the catalogue's own taxonomy? NMI against the given categories, ARI across seeds.

    python benchmarks/bench_tree.py --data amazon-beauty --data-dir ../shared/data

The learned trees never see the category paths: items are encoded from title and brand only
(`ItemTextTemplate(fields=("title", "brand"))`; the default template would include the path).
Level 1 of each tree is compared with the first category level below the shared root (Amazon
Beauty: Skin Care, Hair Care, Makeup...), level 2 with the next one. Items whose given path is too
shallow for a level are left out of that level's NMI (their count is reported). Methods:

- kmeans: plain recursive k-means on the text vectors (no smoothing), same restarts as ours;
- smoothed: `TreeLearner` defaults (vectors smoothed over their 10-NN graph, then recursive k-means);
- smoothed+cooc: the same with the training co-occurrence graph added to the smoothing graph;
- rq: residual-quantisation semantic ids (level 1 = first codebook).

Each is fitted with several seeds; ARI between the seeds' level-1 partitions measures stability.
Writes results/tree_<data>.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import code_version, machine, peak_memory_mb, write_json
from arborec.hierarchy import category_labels, cooccurrence_graph, learn_tree, semantic_ids
from arborec.text import ItemTextTemplate, TextEncoder, encode_items

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="amazon-beauty")
    parser.add_argument("--data-dir")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per method (default: 3)")
    parser.add_argument("--branching", default="8,4,4", help="learned tree branching (default: 8,4,4)")
    parser.add_argument("--extra-k", default="6,12", help="other level-1 sizes tried with the smoothed method")
    parser.add_argument("--rq-codebook", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)

    data = load_prepared(args.data, data_dir=args.data_dir)
    catalog = data.catalog
    vectors = encode_items(catalog, TextEncoder(threads=args.threads),
                           template=ItemTextTemplate(fields=("title", "brand")))
    graph = cooccurrence_graph(leave_one_out(data).train_matrix())
    refs = [category_labels(catalog, level) for level in (1, 2)]
    branching = tuple(int(k) for k in args.branching.split(","))
    seeds = list(range(args.seeds))

    runs = {  # name -> (branching, fit(seed) -> tree)
        "kmeans": (branching, lambda s, b: learn_tree(vectors, b, seed=s, smoothing=0.0)),
        "smoothed": (branching, lambda s, b: learn_tree(vectors, b, seed=s)),
        "smoothed+cooc": (branching, lambda s, b: learn_tree(vectors, b, seed=s, graph=graph)),
        "rq": ((args.rq_codebook,) * 2, lambda s, b: semantic_ids(vectors, n_levels=2, codebook_size=b[0], seed=s)),
    }
    for k in filter(None, args.extra_k.split(",")):
        b = (int(k),) + branching[1:]
        runs[f"smoothed k1={k}"] = (b, lambda s, b: learn_tree(vectors, b, seed=s))

    results = []
    for name, (b, fit) in runs.items():
        trees, seconds = [], []
        for s in seeds:
            t0 = time.perf_counter()
            trees.append(fit(s, b))
            seconds.append(time.perf_counter() - t0)
        row = {"method": name, "branching": list(b), "level_sizes": trees[0].level_sizes,
               "seconds": [round(x, 2) for x in seconds], "load_average": os.getloadavg()[0]}
        for level, ref in enumerate(refs, start=1):
            known = np.array([r is not None for r in ref])
            if not known.any() or level > len(trees[0].level_sizes):
                row[f"nmi_level{level}"], row[f"nmi_level{level}_mean"] = [], None
                continue
            nmis = [normalized_mutual_info_score(ref[known].astype(str), t.codes[known, level - 1]) for t in trees]
            row[f"nmi_level{level}"] = [round(x, 4) for x in nmis]
            row[f"nmi_level{level}_mean"] = round(float(np.mean(nmis)), 4)
        aris = [adjusted_rand_score(a.codes[:, 0], c.codes[:, 0]) for a, c in itertools.combinations(trees, 2)]
        row["ari_level1_pairs"] = [round(x, 4) for x in aris]
        row["ari_level1_min"] = round(float(min(aris)), 4) if aris else None
        results.append(row)
        print(f"{name:<18} nmi L1 {_f(row['nmi_level1_mean'])}  nmi L2 {_f(row['nmi_level2_mean'])}  "
              f"ARI L1 min {row['ari_level1_min']}  {np.mean(seconds):.1f} s/fit", flush=True)

    n_ref = [int(sum(r is not None for r in ref)) for ref in refs]
    result = {
        "dataset": data.name, "n_items": len(catalog),
        "text": " + ".join(f for f in ("title", "brand") if f in catalog.columns) + " (no category path)",
        "reference": {"level1_classes": len({r for r in refs[0] if r is not None}),
                      "level2_classes": len({r for r in refs[1] if r is not None}),
                      "items_with_level1": n_ref[0], "items_with_level2": n_ref[1]},
        "seeds": seeds, "results": results, "peak_memory_mb": peak_memory_mb(), "machine": machine(),
        "code_version": code_version(), "load_average_end": os.getloadavg(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    out = write_json(result, RESULTS / f"tree_{data.name}.json")
    ref = result["reference"]
    lines = [f"# Learned interest tree vs the given taxonomy: {data.name} ({len(catalog):,} items)", "",
             f"Command: `{result['command']}` ({result['date']}, {machine()['cpus']} CPUs shared, "
             f"load average {os.getloadavg()[0]:.1f}: timings are pessimistic).", "",
             f"Text: {result['text']}. NMI level 1 vs the {ref['level1_classes']} first-level categories "
             f"({ref['items_with_level1']:,} items have one), level 2 vs the {ref['level2_classes']} second-level "
             f"ones ({ref['items_with_level2']:,} items; shallower paths left out). Seeds {seeds}.", "",
             "| method | level sizes | NMI L1 (mean) | NMI L2 (mean) | ARI L1 across seeds (min) | s/fit |",
             "|---|---|---|---|---|---|"]
    for row in results:
        lines.append(f"| {row['method']} | {row['level_sizes']} | {_f(row['nmi_level1_mean'])} | "
                     f"{_f(row['nmi_level2_mean'])} | {row['ari_level1_min']} | {np.mean(row['seconds']):.1f} |")
    lines += ["", "kmeans: plain recursive k-means on the text vectors; smoothed: `TreeLearner` defaults (each vector "
              "pulled towards its 10 nearest neighbours, personalised-PageRank style, 0.9 x 10 steps, then recursive "
              "k-means with 32 restarts at level 1, 8 below); smoothed+cooc: the smoothing graph also holds the "
              "training co-occurrences (weight 0.5); rq: residual-quantisation semantic ids "
              f"({args.rq_codebook} codes per level). ARI: adjusted Rand index between the level-1 partitions of "
              "every pair of seeds (the minimum is shown)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written {out}")
    return 0


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
