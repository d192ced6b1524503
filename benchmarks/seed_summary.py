"""arborec against SASRec over several seeds: per-seed test NDCG@10 / Recall@10, their mean and spread.

    python benchmarks/seed_summary.py --data ml-100k

Reads the records that ``run_model.py`` wrote for each seed: ``arborec_<data>.json`` (``--seed 0``)
and ``arborec_<data>_seed<N>.json`` (``--seed N --tag _seed<N>``), each with an ``sasrec`` and an
``arborec`` variant trained in the same run, and writes ``arborec_<data>_seeds.md``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()
    folder = Path(args.results)
    runs = {}  # seed -> {variant: record}
    for path in [folder / f"arborec_{args.data}.json", *sorted(folder.glob(f"arborec_{args.data}_seed*.json"))]:
        for r in json.loads(path.read_text()):
            if r["variant"] in ("sasrec", "arborec"):
                runs.setdefault(int(r["params"]["seed"]), {})[r["variant"]] = r | {"_file": path.name}
    runs = {s: v for s, v in sorted(runs.items()) if len(v) == 2}
    if not runs:
        parser.error(f"no seed with both an sasrec and an arborec record in {folder}")
    lines = [f"# arborec against SASRec on {args.data}, several seeds (test, full ranking)", "",
             "Each seed is one run of `run_model.py` training both models (early stopping on validation NDCG@10, "
             "same budget).", "",
             "| seed | SASRec NDCG@10 | arborec NDCG@10 | arborec / SASRec | SASRec R@10 | arborec R@10 | file |",
             "|---|---|---|---|---|---|---|"]
    table = {m: {k: [] for k in ("ndcg@10", "recall@10")} for m in ("sasrec", "arborec")}
    for seed, pair in runs.items():
        for m in table:
            for k in table[m]:
                table[m][k].append(pair[m]["test"]["metrics"][k])
        s, a = (pair[m]["test"]["metrics"] for m in ("sasrec", "arborec"))
        lines.append(f"| {seed} | {s['ndcg@10']:.4f} | {a['ndcg@10']:.4f} | {a['ndcg@10'] / s['ndcg@10'] - 1:+.1%} | "
                     f"{s['recall@10']:.4f} | {a['recall@10']:.4f} | [{pair['arborec']['_file']}]"
                     f"({pair['arborec']['_file']}) |")
    mean = {m: {k: float(np.mean(v)) for k, v in table[m].items()} for m in table}
    std = {m: {k: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan") for k, v in table[m].items()}
           for m in table}
    lines.append(f"| mean ± sd | {mean['sasrec']['ndcg@10']:.4f} ± {std['sasrec']['ndcg@10']:.4f} | "
                 f"{mean['arborec']['ndcg@10']:.4f} ± {std['arborec']['ndcg@10']:.4f} | "
                 f"**{mean['arborec']['ndcg@10'] / mean['sasrec']['ndcg@10'] - 1:+.1%}** | "
                 f"{mean['sasrec']['recall@10']:.4f} | {mean['arborec']['recall@10']:.4f} | |")
    commands = sorted({re.sub(r"\s+", " ", r["command"]) for pair in runs.values() for r in pair.values()})
    lines += ["", "Commands:", *[f"- `{c}`" for c in commands]]
    (folder / f"arborec_{args.data}_seeds.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
