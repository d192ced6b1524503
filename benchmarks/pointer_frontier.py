"""The text pointer's trade-off on a fitted bundle: overall NDCG@10 against cold-item Recall@10, every candidate.

    python benchmarks/pointer_frontier.py --bundle runs/bundles/amazon-beauty-arborec \\
        --data amazon-beauty --data-dir ../shared/data

For every (pointer_weight, pointer_temperature) candidate of ``ArboRec``'s validation grid, the
bundle (its path and text weights as chosen at fit) is evaluated on validation and on test. It also
says which candidate each selection rule picks from validation alone: the best NDCG@10
(``cold_tiebreak=False``) and the best cold-item Recall@10 within one standard error of it (the
default). Test is read for the record only: no choice here is made on it. Writes
results/pointer_<data>.json and .md, and a plot results/plots/pointer_<data>.png.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

import torch

from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import code_version, evaluate, machine, write_json
from arborec.model import load_bundle
from arborec.model._recommender import POINTER_TEMPERATURES, POINTER_WEIGHTS

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="an arborec bundle fitted on --data")
    parser.add_argument("--data", required=True, help="dataset name or folder")
    parser.add_argument("--data-dir", help="folder holding <name>/ dataset folders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default=str(RESULTS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    data = load_prepared(args.data, data_dir=args.data_dir)
    split = leave_one_out(data)
    model = load_bundle(args.bundle)
    model.pointer_weight = model.pointer_temperature = "auto"
    chosen = {}
    for rule, tiebreak in (("best valid NDCG@10", False), ("cold tie-break within 1 SE (default)", True)):
        model.cold_tiebreak = tiebreak
        model._select_pointer(split)
        chosen[rule] = [model.pointer_weight_, model.pointer_temperature_]

    rows = []
    candidates = [(0.0, POINTER_TEMPERATURES[0])] + [(w, t) for w in POINTER_WEIGHTS if w for t in POINTER_TEMPERATURES]
    for w, t in candidates:
        model.pointer_weight_, model.pointer_temperature_ = w, t
        row = {"pointer_weight": w, "pointer_temperature": t}
        for stage in ("valid", "test"):
            e = evaluate(model, split, stage)
            cold = next(s for k, s in e.slices.items() if k.startswith("cold"))
            row[stage] = {"ndcg@10": e.metrics["ndcg@10"], "recall@10": e.metrics["recall@10"],
                          "cold_recall@10": cold["metrics"]["recall@10"], "cold_users": cold["n_users"]}
        rows.append(row)
        logging.info("pointer %.2f @ %.3f: valid %.4f (cold %.4f), test %.4f (cold %.4f)", w, t,
                     row["valid"]["ndcg@10"], row["valid"]["cold_recall@10"], row["test"]["ndcg@10"],
                     row["test"]["cold_recall@10"])
    record = {"data": data.name, "bundle": str(args.bundle), "path_weight": model.path_weight_,
              "text_weight": model.text_weight_, "chosen": chosen, "candidates": rows,
              "command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "machine": machine(),
              "code_version": code_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.output_dir)
    write_json(record, out / f"pointer_{data.name}.json")
    write_summary(record, out / f"pointer_{data.name}.md")
    plot(record, out / "plots" / f"pointer_{data.name}.png")
    return 0


def write_summary(record: dict, path: Path) -> None:
    picks = {tuple(v): k for k, v in record["chosen"].items()}
    lines = [f"# The text pointer on {record['data']}: overall NDCG@10 against cold-item Recall@10", "",
             f"Bundle `{record['bundle']}` (path weight {record['path_weight']:g}, text weight "
             f"{record['text_weight']:g}); every candidate of the validation grid, evaluated on validation and test "
             "(full ranking). Selection reads validation only; test is shown for the record.", "",
             "| pointer weight | temperature | valid NDCG@10 | valid cold R@10 | test NDCG@10 | test R@10 "
             "| test cold R@10 | chosen by |", "|" + "---|" * 8]
    for r in record["candidates"]:
        v, t = r["valid"], r["test"]
        lines.append(f"| {r['pointer_weight']:g} | {r['pointer_temperature']:g} | {v['ndcg@10']:.4f} | "
                     f"{v['cold_recall@10']:.4f} | {t['ndcg@10']:.4f} | {t['recall@10']:.4f} | "
                     f"{t['cold_recall@10']:.4f} | {picks.get((r['pointer_weight'], r['pointer_temperature']), '')} |")
    lines += ["", "Weight 0 is the model without the pointer (the temperature then plays no part). 'cold' = "
              "target items with <= 5 training events.", "",
              f"Command: `{record['command']}` ({record['date']}).",
              "", f"![frontier](plots/pointer_{record['data']}.png)"]
    path.write_text("\n".join(lines) + "\n")


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, stage in zip(axes, ("valid", "test")):
        for t in POINTER_TEMPERATURES:
            pts = [r for r in record["candidates"] if r["pointer_temperature"] == t or not r["pointer_weight"]]
            pts.sort(key=lambda r: r["pointer_weight"])
            ax.plot([r[stage]["cold_recall@10"] for r in pts], [r[stage]["ndcg@10"] for r in pts], "o-",
                    label=f"temperature {t:g}", alpha=0.8)
        for rule, (w, t) in record["chosen"].items():
            r = next(r for r in record["candidates"] if (r["pointer_weight"], r["pointer_temperature"]) == (w, t))
            ax.annotate(rule, (r[stage]["cold_recall@10"], r[stage]["ndcg@10"]), fontsize=7,
                        xytext=(5, -12 if "cold" in rule else 6), textcoords="offset points")
        off = next(r for r in record["candidates"] if not r["pointer_weight"])
        ax.annotate("no pointer", (off[stage]["cold_recall@10"], off[stage]["ndcg@10"]), fontsize=7,
                    xytext=(5, 6), textcoords="offset points")
        ax.set_title(f"{record['data']}, {stage} (each line: pointer weight 0 to {POINTER_WEIGHTS[-1]})")
        ax.set_xlabel("cold-item Recall@10")
        ax.set_ylabel("NDCG@10")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
