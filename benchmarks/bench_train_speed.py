"""Whole training to early stop, arborec against SASRec in the same run: medians of repeats, peak memory.

    python benchmarks/bench_train_speed.py --data amazon-beauty --data-dir ../shared/data --repeats 3 --threads 2

Each model trains with the setting the suite chose for it on the dataset (``benchmarks/results/suite``;
the model's defaults when the suite has no record), seed 0, in a fresh process per run so that peak
memory is that run's own. The runs alternate (sasrec, arborec, sasrec, ...), so machine noise hits both
alike, and the ratio is taken per repeat. "Whole training" is the ``fit`` call: epochs, validation
passes for early stopping and, for arborec, its item vectors (from the encoder's cache after the first
run) and the text weight and pointer chosen after training. Writes results/train_speed_<data>_<cpu kind>.json
and .md. Reads validation only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

RESULTS = Path(__file__).resolve().parent / "results"


def chosen_setting(dataset: str, model: str, suite_dir: Path) -> dict:
    """The setting the suite's tuning chose for ``model`` on ``dataset`` ({} when it has none)."""
    from arborec.suite import RecordStore

    runs = RecordStore(suite_dir, dataset).of(model)
    return runs[0]["tuning"]["chosen"] if runs else {}


def child(args) -> None:
    """One training run; prints one JSON line."""
    import torch

    from arborec.data import leave_one_out, load_prepared
    from arborec.evaluate import peak_memory_mb
    from arborec.recommenders import make_model

    torch.set_num_threads(args.threads)
    data = load_prepared(args.data, data_dir=args.data_dir)
    split = leave_one_out(data)
    model = make_model(args.child, **{"seed": args.seed, "max_epochs": 100, "eval_every": 2, **json.loads(args.params)})
    t0 = time.perf_counter()
    model.fit(split, data)
    seconds = time.perf_counter() - t0
    print("RESULT " + json.dumps({
        "seconds": seconds, "epochs": len(model.history_), "best_epoch": model.best_epoch_,
        "epoch_seconds": model.epoch_seconds_, "valid_ndcg@10_loop": model.best_valid_ndcg_,
        "peak_rss_mb": peak_memory_mb()}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="amazon-beauty")
    parser.add_argument("--data-dir")
    parser.add_argument("--models", default="sasrec,arborec", help="comma-separated; the first is the reference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suite-dir", type=Path, default=RESULTS / "suite")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    from arborec.evaluate import code_version, machine, write_json
    from arborec.text._encoder import machine_kind

    models = args.models.split(",")
    settings = {m: chosen_setting(args.data, m, args.suite_dir) for m in models}
    runs = {m: [] for m in models}
    for repeat in range(args.repeats):
        for m in models:
            cmd = [sys.executable, __file__, "--data", args.data, "--threads", str(args.threads), "--seed",
                   str(args.seed), "--child", m, "--params", json.dumps(settings[m])]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            load = os.getloadavg()[0]
            out = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if out.returncode or line is None:
                sys.stderr.write(out.stderr[-3000:])
                raise SystemExit(f"{m} run {repeat + 1} failed (exit {out.returncode})")
            run = json.loads(line[len("RESULT "):]) | {"load_average_before": load}
            runs[m].append(run)
            print(f"repeat {repeat + 1}/{args.repeats} {m}: {run['seconds']:.0f} s to early stop, "
                  f"{run['epochs']} epochs, {run['peak_rss_mb']:.0f} MiB peak", flush=True)
    ref = models[0]
    summary = {m: {"median_seconds": median(r["seconds"] for r in runs[m]),
                   "median_epoch_seconds": median(r["epoch_seconds"] for r in runs[m]),
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[m]),
                   "setting": settings[m] or "the model's defaults"} for m in models}
    for m in models[1:]:  # per repeat: the two ran next to each other
        summary[m]["ratio_to_" + ref] = median(a["seconds"] / b["seconds"] for a, b in zip(runs[m], runs[ref]))
    kind = machine_kind()
    result = {"benchmark": "train_speed", "dataset": args.data, "threads": args.threads, "seed": args.seed,
              "repeats": args.repeats, "runs": runs, "summary": summary, "machine": machine(),
              "code_version": code_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python benchmarks/bench_train_speed.py " + shlex.join(sys.argv[1:])}
    stem = f"train_speed_{args.data}_{kind}"
    write_json(result, RESULTS / f"{stem}.json")
    lines = [f"# Whole training to early stop on {args.data}: {', '.join(models)}", "",
             f"Command: `{result['command']}`; {result['date']}; code {result['code_version']}; "
             f"{machine()['cpus']}-CPU {kind} machine, {args.threads} torch threads per run, runs one after another "
             f"(load averages before each run are in the JSON). Medians of {args.repeats} runs.", "",
             "| model | whole training (median s) | s/epoch | peak memory (MiB) | against " + ref + " (median of per-repeat ratios) |",
             "|---|---|---|---|---|"]
    for m in models:
        s = summary[m]
        ratio = f"{s['ratio_to_' + ref]:.2f}x" if m != ref else "1"
        lines.append(f"| {m} | {s['median_seconds']:.0f} | {s['median_epoch_seconds']:.1f} | {s['peak_rss_mb']:.0f} | {ratio} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
