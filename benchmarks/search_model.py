"""A small validation-only search over the few parameters that matter, for arborec or SASRec.

Examples:

    python benchmarks/search_model.py --data amazon-beauty --data-dir ../shared/data --threads 1 \\
        --grid lr=0.001,0.002 --grid dropout=0.2,0.3
    python benchmarks/search_model.py --model sasrec --data amazon-beauty --data-dir ../shared/data \\
        --device cuda --grid dropout=0.2,0.5 --grid hidden_size=64,128 --output search_sasrec.json

Every grid point is one fit with early stopping; the table (valid NDCG@10 only: the test split is
never read) goes to ``<output-dir>/<output>`` (default ``search_<model>_<data>.json``). ``--vectors``
gives arborec precomputed item vectors (an .npy of shape (n_items, d), e.g. fine-tuned ones) instead
of encoding the catalogue. Unset grids keep the defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import write_json
from arborec.evaluate._tuning import tune
from arborec.recommenders import make_model

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--model", default="arborec", choices=["arborec", "sasrec", "gru4rec"])
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                        help="a parameter and its candidate values (JSON each), repeatable")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a fixed parameter")
    parser.add_argument("--vectors", help="arborec only: an .npy of item vectors (n_items, d) to use")
    parser.add_argument("--device", default="cpu", help="torch device of the fits (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-dir", default=str(RESULTS))
    parser.add_argument("--output", help="file name in --output-dir (default search_<model>_<data>.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    space = {k: [json.loads(v) for v in vs.split(",")] for k, vs in (g.split("=", 1) for g in args.grid)}
    fixed = {k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}
    fixed["device"] = args.device
    data = load_prepared(args.data, data_dir=args.data_dir)
    split = leave_one_out(data)
    fit_kwargs = {}
    if args.vectors:
        if args.model != "arborec":
            parser.error("--vectors is for --model arborec")
        fit_kwargs["vectors"] = np.load(args.vectors)
    _, best, valid, _, trials = tune(lambda **p: make_model(args.model, **fixed, **p), space, split, data,
                                     fit_kwargs=fit_kwargs)
    out = {"dataset": data.name, "model": args.model, "split_hash": split.fingerprint(), "fixed": fixed,
           "vectors": args.vectors, "space": space, "best": best, "best_valid": valid.metrics, "trials": trials,
           "command": "python " + " ".join(shlex.quote(a) for a in sys.argv)}
    write_json(out, Path(args.output_dir) / (args.output or f"search_{args.model}_{data.name}.json"))
    for t in trials:
        print(t)
    print("best:", best, valid.metrics["ndcg@10"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
