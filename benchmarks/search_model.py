"""A small validation-only search over the few arborec parameters that matter (lr, dropout, head weight, width).

Example:

    python benchmarks/search_model.py --data amazon-beauty --data-dir ../shared/data --threads 1 \\
        --grid lr=0.001,0.002 --grid dropout=0.2,0.3

Every grid point is one fit with early stopping; the table (valid NDCG@10 only: the test split is
never read) goes to ``<output-dir>/search_<data>.json``. Unset grids keep the defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import torch

from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import write_json
from arborec.evaluate._tuning import tune
from arborec.model import ArboRec

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                        help="a parameter and its candidate values (JSON each), repeatable")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a fixed parameter")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", default=str(RESULTS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    space = {k: [json.loads(v) for v in vs.split(",")] for k, vs in (g.split("=", 1) for g in args.grid)}
    fixed = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    data = load_prepared(args.data, data_dir=args.data_dir)
    split = leave_one_out(data)
    _, best, valid, _, trials = tune(lambda **p: ArboRec(**fixed, **p), space, split, data)
    out = {"dataset": data.name, "split_hash": split.fingerprint(), "fixed": fixed, "space": space,
           "best": best, "best_valid": valid.metrics, "trials": trials,
           "command": "python " + " ".join(shlex.quote(a) for a in sys.argv)}
    write_json(out, Path(args.output_dir) / f"search_{data.name}.json")
    for t in trials:
        print(t)
    print("best:", best, valid.metrics["ndcg@10"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
