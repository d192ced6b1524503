"""Item-encoding throughput: sentence-transformers (fp32) vs ONNX Runtime (fp32, int8), same run, medians of repeats.

    python benchmarks/bench_encode.py --data amazon-beauty --data-dir ../shared/data --repeats 3
    python benchmarks/bench_encode.py --data amazon-beauty --data-dir ../shared/data --sample 1000 --threads 1 \
        --backends torch,torch-bf16,onnx-int8,static --no-warm      # a short burst on a shared machine

Each repeat encodes the whole catalogue from an empty vector cache with every backend in turn
(interleaved, so machine noise hits all of them alike); ONNX export and quantisation happen once
before timing. Then it times a second `arborec encode` run on a warm cache in a fresh process, and
compares int8 with fp32 vectors (cosine per item). Writes results/encode_<data>.json and .md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

from arborec.data import load_prepared
from arborec.evaluate import machine, peak_memory_mb, write_json
from arborec.text import ItemTextTemplate, TextEncoder, encode_items
from arborec.text._encoder import machine_kind

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="amazon-beauty")
    parser.add_argument("--data-dir")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="torch,torch-bf16,onnx-int8,static")
    parser.add_argument("--sample", type=int, default=None, help="a seeded random sample of this many items")
    parser.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm-cache CLI timing")
    args = parser.parse_args()
    data = load_prepared(args.data, data_dir=args.data_dir)
    catalog = data.catalog
    if args.sample and args.sample < len(catalog):
        rows = np.sort(np.random.default_rng(0).choice(len(catalog), args.sample, replace=False))
        catalog = catalog.iloc[rows].reset_index(drop=True)
    texts = ItemTextTemplate().render(catalog)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    backends = args.backends.split(",")
    encoders = {b: TextEncoder(backend=b, threads=args.threads) for b in backends}
    for enc in encoders.values():  # load the model, export/quantise ONNX: not part of the timing
        enc.encode(texts[:8])
    load = os.getloadavg()
    seconds = {b: [] for b in backends}
    vectors = {}
    for r in range(args.repeats):
        for b in backends:
            with tempfile.TemporaryDirectory() as empty_cache:
                t0 = time.perf_counter()
                vectors[b] = encode_items(catalog, encoders[b], cache_dir=empty_cache)
                seconds[b].append(time.perf_counter() - t0)
            print(f"repeat {r + 1}: {b:<10} {len(texts) / seconds[b][-1]:7.0f} items/s", flush=True)
    rate = {b: len(texts) / median(s) for b, s in seconds.items()}

    # Second run on a warm cache, as a user runs it: a fresh process of the CLI.
    env = dict(os.environ)
    cli = [sys.executable, "-m", "arborec", "-q", "encode", "--data", args.data]
    if args.data_dir:
        cli += ["--data-dir", args.data_dir]
    warm = []
    if not args.no_warm:
        subprocess.run(cli, check=True, env=env, capture_output=True)  # fills the cache if needed
    for _ in range(0 if args.no_warm else args.repeats):
        t0 = time.perf_counter()
        subprocess.run(cli, check=True, env=env, capture_output=True)
        warm.append(time.perf_counter() - t0)

    cos = {}
    if "torch" in vectors:
        for b in backends:
            if b != "torch" and vectors[b].shape == vectors["torch"].shape:
                c = (vectors[b] * vectors["torch"]).sum(axis=1)
                cos[b] = {"min": float(c.min()), "p1": float(np.percentile(c, 1)), "mean": float(c.mean())}
    result = {
        "dataset": data.name, "n_items": len(texts), "repeats": args.repeats,
        "seconds": seconds, "items_per_second_median": rate,
        "speedup_vs_torch": {b: rate[b] / rate["torch"] for b in backends} if "torch" in rate else {},
        "warm_cache_cli_seconds": warm, "warm_cache_cli_seconds_median": median(warm) if warm else None,
        "threads": args.threads, "sample": args.sample, "machine_kind": machine_kind(),
        "cosine_vs_torch_fp32": cos, "peak_memory_mb": peak_memory_mb(),
        "load_average_before": load[0], "load_average_after": os.getloadavg()[0], "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    out = write_json(result, RESULTS / f"encode_{data.name}_{machine_kind()}.json")
    lines = [f"## Machine kind `{machine_kind()}` ({len(texts):,} items{' sampled' if args.sample else ''})", "",
             f"Command: `{result['command']}` — {result['date']}, {machine()['cpus']} CPUs. "
             f"Medians of {args.repeats} interleaved runs from an empty vector cache.", "",
             "| backend | items/s (median) | x sentence-transformers | runs (s) | cosine vs fp32 (min / p1 / mean) |",
             "|---|---|---|---|---|"]
    for b in backends:
        c = cos.get(b)
        lines.append(f"| {b} | {rate[b]:.0f} | {result['speedup_vs_torch'].get(b, float('nan')):.2f} | "
                     f"{', '.join(f'{s:.1f}' for s in seconds[b])} | "
                     + (f"{c['min']:.4f} / {c['p1']:.4f} / {c['mean']:.4f}" if c else "reference") + " |")
    lines += ["", f"`auto` picks `{TextEncoder()._resolved_backend()}` on this machine. "
                  f"Load average before/after: {load[0]:.1f} / {os.getloadavg()[0]:.1f} (timings are pessimistic "
                  "under load; the ratios are measured in the same interleaved runs).",
              ""] + ([f"Second `arborec encode` run (fresh process, warm cache): median {median(warm):.2f} s "
                      f"({', '.join(f'{s:.2f}' for s in warm)})", ""] if warm else [])
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
