"""Scale curve: wall time and peak memory of generate / prepare / encode / train-epoch / evaluate as data grows.

    python benchmarks/bench_scale.py --sizes 10000,100000 --stages generate,prepare,encode,encode-ray,train,evaluate
    python benchmarks/bench_scale.py --sizes 10000,100000,1000000     # the 1M point: a quiet machine, >= 24 GiB

Each size N generates N items and N * --events-per-item events (users: events / 20) with
`arborec generate`'s generator, then runs every stage in a FRESH Python process, so each stage's
peak resident memory is its own (ru_maxrss of that process; Ray's worker processes are not
counted, their CPU time is in the wall time). Stages:

- generate: make_scale to Parquet (streamed in chunks).
- prepare: read the folder, prepare (dedup, 5-core, ids), save the prepared Parquet.
- encode / encode-ray: item text vectors from an EMPTY vector cache, local engine (one process) or
  a local Ray instance (--ray-cpus CPUs, one encoder actor per CPU); --encode-max caps the items.
- train: one epoch of SASRec (full softmax, chunked cross-entropy) and its validation, one thread;
  epoch_seconds is the epoch alone.
- train-ray: the same epoch on Ray Train (DDP, gloo, --ray-cpus workers of one thread each);
  seconds include starting Ray and the workers, epoch_seconds is the epoch alone.
- evaluate: full-ranking test evaluation of that model on --eval-users users (the same process as
  train; its peak is the peak of train + evaluate).

Writes results/scale_<sizes>.json and .md; the load average is recorded with each stage (on a
shared machine timings are pessimistic).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("generate", "prepare", "encode", "encode-ray", "train", "train-ray", "evaluate")


def run_stage(stage: str, size: int, work: Path, args) -> dict:
    """Run one stage in a fresh process; returns its JSON line (seconds, peak_mb, extra figures)."""
    cmd = [sys.executable, __file__, "--_stage", stage, "--_size", str(size), "--_work", str(work),
           "--events-per-item", str(args.events_per_item), "--eval-users", str(args.eval_users),
           "--ray-cpus", str(args.ray_cpus), "--encode-max", str(args.encode_max)]
    import arborec  # the stage processes import the same arborec as this one

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(arborec.__file__).resolve().parent.parent)}
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"stage": stage, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"], "load_1min": load}
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record["load_1min"] = round(load, 2)
    return record


def stage_main(stage: str, size: int, work: Path, args) -> dict:
    import resource

    import numpy as np
    import torch

    torch.set_num_threads(1)
    peak = lambda: round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # noqa: E731
    raw, prepared = work / "raw", work / "prepared"
    out: dict = {"stage": stage}
    t0 = time.perf_counter()
    if stage == "generate":
        from arborec.data import make_scale

        n_events = size * args.events_per_item
        make_scale(n_items=size, n_users=max(1, n_events // 20), n_events=n_events, seed=0, out_dir=raw)
        out.update(n_items=size, n_events=n_events, n_users=max(1, n_events // 20))
    elif stage == "prepare":
        from arborec.data import prepare, read_folder

        data = prepare(read_folder(raw))
        data.save(prepared)
        out.update(n_items=data.n_items, n_users=data.n_users, n_events=int(data.stats["n_interactions"]))
    elif stage in ("encode", "encode-ray"):
        from arborec.data import PreparedData
        from arborec.text import TextEncoder, encode_items

        catalog = PreparedData.load(prepared).catalog
        catalog = catalog.iloc[: args.encode_max] if args.encode_max > 0 else catalog
        t0 = time.perf_counter()  # loading the tables is prepare's business
        with tempfile.TemporaryDirectory() as cache:
            encoder = TextEncoder(threads=1)
            if stage == "encode":
                vectors = encode_items(catalog, encoder, cache_dir=cache)
            else:
                from arborec.scale import encode_items_ray, ray_session

                with ray_session(num_cpus=args.ray_cpus):
                    vectors = encode_items_ray(catalog, encoder, cache_dir=cache, actors=args.ray_cpus)
        out.update(n_items=len(vectors), backend=encoder.backend_, items_per_s=round(len(vectors) / (
            time.perf_counter() - t0), 1))
    elif stage == "train-ray":
        from arborec.baselines import SASRec
        from arborec.data import PreparedData, leave_one_out
        from arborec.scale import fit_ray, ray_session

        split = leave_one_out(PreparedData.load(prepared))
        t0 = time.perf_counter()
        with ray_session(num_cpus=args.ray_cpus):
            model = fit_ray(SASRec(max_epochs=1, seed=0), split, workers=args.ray_cpus)
        out.update(epoch_seconds=round(model.history_[-1]["seconds"], 2), workers=args.ray_cpus)
    elif stage in ("train", "evaluate"):
        from arborec.baselines import SASRec
        from arborec.data import PreparedData, leave_one_out
        from arborec.evaluate import evaluate

        split = leave_one_out(PreparedData.load(prepared))
        t0 = time.perf_counter()
        model = SASRec(max_epochs=1, seed=0).fit(split)
        out.update(train_seconds=round(time.perf_counter() - t0, 2), train_peak_mb=peak(),
                   epoch_seconds=round(model.history_[-1]["seconds"], 2))  # the epoch without its validation
        if stage == "evaluate":
            users = split.eval_users("test")
            users = np.random.default_rng(0).choice(users, min(args.eval_users, len(users)), replace=False)
            t0 = time.perf_counter()
            result = evaluate(model, split, "test", users=np.sort(users))
            out.update(n_users=len(users), ndcg10=round(result.metrics["ndcg@10"], 4))
    out.update(seconds=round(time.perf_counter() - t0, 2), peak_mb=peak())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="item counts, comma-separated")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"any of {','.join(STAGES)}")
    parser.add_argument("--events-per-item", type=int, default=10)
    parser.add_argument("--eval-users", type=int, default=5000, help="test users evaluated (sampled, seed 0)")
    parser.add_argument("--ray-cpus", type=int, default=2)
    parser.add_argument("--encode-max", type=int, default=0, help="encode at most this many items (0: all)")
    parser.add_argument("--work", default=None, help="folder for generated data (default: a temporary one)")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--_stage"), parser.add_argument("--_size", type=int), parser.add_argument("--_work")
    args = parser.parse_args()
    if args._stage:
        print(json.dumps(stage_main(args._stage, args._size, Path(args._work), args)))
        return 0

    from arborec.evaluate import code_version, machine, write_json

    sizes = [int(s) for s in args.sizes.split(",")]
    stages = [s for s in args.stages.split(",") if s]
    root = Path(args.work or tempfile.mkdtemp(prefix="arborec-scale-"))
    rows = []
    for size in sizes:
        for stage in stages:
            if stage == "train" and "evaluate" in stages:
                continue  # evaluate trains first and reports the training figures too
            record = {"size": size, **run_stage(stage, size, root / f"n{size}", args)}
            rows.append(record)
            print(json.dumps(record), flush=True)
    name = f"scale_{'-'.join(str(s) for s in sizes)}{args.tag}"
    write_json({"benchmark": "scale", "rows": rows, "events_per_item": args.events_per_item,
                "eval_users": args.eval_users, "ray_cpus": args.ray_cpus, "encode_max": args.encode_max,
                "machine": machine(), "code_version": code_version(),
                "command": "python " + " ".join([Path(__file__).name] + sys.argv[1:]),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, RESULTS / f"{name}.json")
    lines = ["| items | stage | wall s | peak MiB | load (1 min) | notes |", "|---:|---|---:|---:|---:|---|"]
    for r in rows:
        notes = ", ".join(f"{k}={v}" for k, v in r.items()
                          if k not in ("size", "stage", "seconds", "peak_mb", "load_1min"))
        lines.append(f"| {r['size']:,} | {r['stage']} | {r.get('seconds', '-')} | {r.get('peak_mb', '-')} | "
                     f"{r.get('load_1min', '-')} | {notes} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
