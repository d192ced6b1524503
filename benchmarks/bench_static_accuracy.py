"""What the static (model2vec) encoder costs in accuracy: the text-only recommender's validation NDCG@10 with
MiniLM vectors against the same recommender with the static model distilled from MiniLM.

    python benchmarks/bench_static_accuracy.py --data ml-100k --data amazon-beauty --data-dir ../shared/data

Validation only (the choice of encoder is a model choice); writes results/encode_static_accuracy.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import evaluate, machine, write_json
from arborec.text.recommender import TextOnly

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--reference", default="torch-bf16", help="MiniLM backend of the reference vectors "
                                                                  "(bf16: cosine >= 0.9999 with fp32)")
    args = parser.parse_args()
    rows = []
    for name in args.data:
        data = load_prepared(name, data_dir=args.data_dir)
        split = leave_one_out(data)
        for backend in (args.reference, "static"):
            t0 = time.perf_counter()
            model = TextOnly(backend=backend).fit(split, data)
            fit_s = time.perf_counter() - t0
            m = evaluate(model, split, "valid").metrics
            rows.append({"dataset": name, "backend": backend, "valid_ndcg@10": m["ndcg@10"],
                         "valid_recall@10": m["recall@10"], "fit_seconds": fit_s})
            print(rows[-1], flush=True)
    result = {"rows": rows, "machine": machine(), "load_average": os.getloadavg()[0],
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": "python " + " ".join(shlex.quote(a) for a in sys.argv)}
    out = write_json(result, RESULTS / "encode_static_accuracy.json")
    lines = ["# What the static encoder costs: text-only recommender, validation", "",
             f"Command: `{result['command']}` — {result['date']}. `text` = the user's recency-weighted mean of "
             "their items' vectors, ranked by cosine; the same recommender, only the item vectors differ.", "",
             "| data | vectors | valid NDCG@10 | valid Recall@10 | ratio to MiniLM | fit s (encode included) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ref = next(x for x in rows if x["dataset"] == r["dataset"] and x["backend"] == args.reference)
        label = "MiniLM (" + r["backend"] + ")" if r["backend"] != "static" else "static (model2vec from MiniLM)"
        lines.append(f"| {r['dataset']} | {label} | {r['valid_ndcg@10']:.4f} | {r['valid_recall@10']:.4f} | "
                     f"{r['valid_ndcg@10'] / ref['valid_ndcg@10']:.2f} | {r['fit_seconds']:.1f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
