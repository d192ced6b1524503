"""arborec on the common protocol: the full model, its ablations and SASRec re-measured in the same run.

Example (the commands behind benchmarks/results/arborec_*.json):

    python benchmarks/run_model.py --data amazon-beauty --data-dir ../shared/data --threads 1
    python benchmarks/run_model.py --data ml-100k --data-dir ../shared/data --threads 1 \\
        --param max_len=200 --param sasrec.max_len=200

An ablation tool: each variant is one fit (early stopping on validation NDCG@10) evaluated on
**validation only** (the test split is read by the benchmark suite, ``arborec suite``, once per final
configuration, never by an exploration); results are
appended to ``<output-dir>/arborec_<data>.json`` after every run (a rerun replaces the same variant)
and the Markdown summary ``arborec_<data>.md`` is rewritten.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import torch

from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import run_model, write_json
from arborec.model import save_fitted
from arborec.recommenders import make_model

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {  # name -> ArboRec parameters that differ from the full model
    "arborec": {},
    "no_text": {"use_text": False, "text_weight": 0.0, "pointer_weight": 0.0},  # no language-model vector anywhere
    "no_pointer": {"pointer_weight": 0.0},  # the text pointer off (the item table and text term keep the text)
    "no_long": {"use_long": False},
    "no_short": {"use_short": False},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset name or folder")
    parser.add_argument("--data-dir", help="folder holding <name>/ dataset folders")
    parser.add_argument("--variants", default="sasrec," + ",".join(VARIANTS),
                        help="comma-separated: sasrec and/or " + ", ".join(VARIANTS))
    parser.add_argument("--param", action="append", default=[], metavar="[sasrec.]NAME=VALUE",
                        help="an ArboRec parameter (or sasrec.NAME for SASRec), VALUE parsed as JSON")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=str(RESULTS))
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. _ablation (arborec_<data><tag>.json)")
    parser.add_argument("--checkpoints", default="runs/checkpoints", help="checkpoint/plot folder per variant")
    parser.add_argument("--bundles", help="if set, each arborec variant is also saved as a bundle <bundles>/<data><tag>-<variant>")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    ours, sasrec = {}, {}
    for item in args.param:
        key, value = item.split("=", 1)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        (sasrec if key.startswith("sasrec.") else ours)[key.removeprefix("sasrec.")] = value

    data = load_prepared(args.data, data_dir=args.data_dir)
    split = leave_one_out(data)
    path = Path(args.output_dir) / f"arborec_{data.name}{args.tag}.json"
    for variant in args.variants.split(","):
        t0 = time.perf_counter()
        if variant == "sasrec":
            record = run_model(lambda **p: make_model("sasrec", **p), split, data,
                               params={"seed": args.seed, **sasrec}, seed=args.seed, command=command,
                               with_test=False)
        else:
            params = {"seed": args.seed, **ours, **VARIANTS[variant],
                      "checkpoint_dir": str(Path(args.checkpoints) / f"{data.name}{args.tag}-{variant}")}
            holder = {}

            def build(**p):
                holder["model"] = make_model("arborec", **p)
                return holder["model"]

            record = run_model(build, split, data, params=params, seed=args.seed, command=command,
                               with_test=False)
            m = holder["model"]
            record["text_weight"] = m.text_weight_
            record["score_weights_valid_ndcg@10"] = getattr(m, "score_weight_scores_", None)
            record["pointer_weight"], record["pointer_temperature"] = m.pointer_weight_, m.pointer_temperature_
            record["pointer_valid_ndcg@10"] = getattr(m, "pointer_scores_", None)
            record["pointer_valid_cold_recall@10"] = getattr(m, "pointer_cold_recall_", None)
            record["best_epoch"], record["n_epochs"] = m.best_epoch_, len(m.history_)
            record["history"] = m.history_
            if args.bundles:
                save_fitted(m, data, Path(args.bundles) / f"{data.name}{args.tag}-{variant}")
        record["variant"] = variant
        record["wall_seconds"] = round(time.perf_counter() - t0, 1)
        # re-read first: several processes may run variants of the same dataset side by side
        records = json.loads(path.read_text()) if path.exists() else []
        records = [r for r in records if r.get("variant") != variant] + [record]
        write_json(records, path)
        logging.info("%s %s: valid ndcg@10 %.4f recall@10 %.4f (%.0f s)", data.name, variant,
                     record["valid"]["metrics"]["ndcg@10"], record["valid"]["metrics"]["recall@10"],
                     record["wall_seconds"])
        write_summary(records, path.with_suffix(".md"), data.name)
    return 0


def write_summary(records: list[dict], path: Path, name: str) -> None:
    """The Markdown table: one row per variant, validation metrics, cold-item recall, epochs and time."""
    order = {v: i for i, v in enumerate(["sasrec", *VARIANTS])}
    rows = sorted(records, key=lambda r: order.get(r.get("variant"), 99))
    lines = [f"# arborec on {name} (full ranking, leave-one-out, VALIDATION split)", "",
             "| variant | NDCG@10 | R@10 | NDCG@20 | R@20 | cold R@10 | valid NDCG@10 "
             "| [path /] text weight [/ pointer @ T] | epochs (best) | max epochs | s/epoch | fit s | peak MB |",
             "|" + "---|" * 13]
    for r in rows:
        t = r["valid"]["metrics"]
        cold = next(s["metrics"]["recall@10"] for k, s in r["valid"]["slices"].items() if k.startswith("cold"))
        epochs = f"{r.get('n_epochs', '')} ({r.get('best_epoch', '')})" if "n_epochs" in r else ""
        lines.append(f"| {r['variant']} | {t['ndcg@10']:.4f} | {t['recall@10']:.4f} | {t['ndcg@20']:.4f} | "
                     f"{t['recall@20']:.4f} | {cold:.4f} | {r['valid']['metrics']['ndcg@10']:.4f} | "
                     f"{_weights(r)} | {epochs} | {r['params'].get('max_epochs')} | "
                     f"{r.get('epoch_seconds', 0):.1f} | "
                     f"{r['fit_seconds']:.0f} | {r['peak_memory_mb']:.0f} |")
    lines += ["", "Variants: `no_text` drops the text part of the item representation, the text term and the text "
              "pointer, `no_pointer` the text pointer only, `no_long` / `no_short` the GRU / attention stream. "
              "(Runs before 0.2 also had `no_tree` and `no_heads`: the tree was then in the ranking path.) 'cold' = test "
              "items with <= 5 training events. Every line of a table has the same epoch budget (column 'max "
              "epochs', early stopping on validation NDCG@10 inside it). The text weight of the score is "
              "chosen on validation after training (`text_weight=\"auto\"`), then the text "
              "pointer's weight and temperature (`pointer_weight`, `pointer_temperature`; shown when it is on).",
              "", "Commands: see `command` in the JSON records (one per variant). Timings: one torch thread per "
              "process on a shared 2-core machine, with two or three runs side by side, so seconds are "
              "pessimistic; see `machine` and `date` in the records."]
    path.write_text("\n".join(lines) + "\n")


def _weights(record: dict) -> str:
    if "text_weight" not in record:
        return ""
    pointer = record.get("pointer_weight") and f" / {record['pointer_weight']:g} @ {record['pointer_temperature']:g}"
    path = f"{record['path_weight']:g} / " if "path_weight" in record else ""  # runs before 0.2
    return f"{path}{record['text_weight']:g}{pointer or ''}"


if __name__ == "__main__":
    raise SystemExit(main())
