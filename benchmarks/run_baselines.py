"""Run every baseline through the common protocol on the given datasets; write JSON and the summary.

Example (the command behind benchmarks/results/baselines_*.json):

    python benchmarks/run_baselines.py --data ml-100k --data amazon-beauty --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import torch

from arborec.recommenders import MODELS, make_model
from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import metric_table, run_model, write_json

RESULTS = Path(__file__).resolve().parent / "results"
SEQUENTIAL = {"sasrec", "gru4rec", "bsarec", "sasrec-text", "unisrec", "unisrec-t"}  # trained with their defaults (a grid would take hours on 2 cores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, help="dataset name or folder (repeatable)")
    parser.add_argument("--data-dir", help="folder holding <name>/ dataset folders")
    parser.add_argument("--models", default="mostpop,itemknn,ease,als,gru4rec,sasrec")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", action="append", default=[], metavar="MODEL.NAME=VALUE",
                        help="fix a parameter of one model, e.g. sasrec.dropout=0.2 (VALUE parsed as JSON)")
    parser.add_argument("--no-tune", default="", help="comma-separated models to run without their grid")
    parser.add_argument("--output-dir", default=str(RESULTS))
    parser.add_argument("--prefix", default="baselines", help="results go to <output-dir>/<prefix>_<data>.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    fixed: dict[str, dict] = {}
    for item in args.param:
        key, value = item.split("=", 1)
        model_name, name = key.split(".", 1)
        try:
            fixed.setdefault(model_name, {})[name] = json.loads(value)
        except json.JSONDecodeError:
            fixed.setdefault(model_name, {})[name] = value
    no_tune = set(filter(None, args.no_tune.split(","))) | SEQUENTIAL
    out_dir = Path(args.output_dir)
    for name in args.data:
        data = load_prepared(name, data_dir=args.data_dir)
        split = leave_one_out(data)
        path = out_dir / f"{args.prefix}_{data.name}.json"
        previous = json.loads(path.read_text()) if path.exists() else []
        records = []
        for model_name in args.models.split(","):
            cls = MODELS[model_name]
            params = {"seed": args.seed} if "seed" in cls().get_params() else {}
            params.update(fixed.get(model_name, {}))
            space = {} if model_name in no_tune else {k: v for k, v in cls.search_space.items() if k not in params}
            record = run_model(lambda **p: make_model(model_name, **p), split, data, space=space, params=params,
                               seed=args.seed, command=command)
            records.append(record)
            print(metric_table([record]).splitlines()[-1], flush=True)
            # after each model, nothing lost; records of models not run this time are kept
            ran = {r["model"] for r in records}
            write_json([r for r in previous if r["model"] not in ran] + records, path)
        print(metric_table(records))
    from summarize import main as summarize  # noqa: E402  (benchmarks/ is the script's folder)

    summarize(out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
