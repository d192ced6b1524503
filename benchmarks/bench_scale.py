"""Scale curve: wall time and peak memory of generate / prepare / encode / train-epoch / evaluate as data grows.

    python benchmarks/bench_scale.py --sizes 10000,100000 --stages generate,prepare,encode,encode-ray,train,evaluate
    python benchmarks/bench_scale.py --sizes 10000,100000,1000000     # the 1M point: a quiet machine, >= 24 GiB

Each size N generates N items and N * --events-per-item events (users: events / 20) with
`arborec generate`'s generator, then runs every stage in a FRESH Python process, so each stage's
peak resident memory is its own (ru_maxrss of that process; Ray's worker processes are not
counted, their CPU time is in the wall time). Stages:

- generate: make_scale to Parquet (streamed in chunks).
- prepare: read the folder, prepare (dedup, 5-core, ids), save the prepared Parquet.
- encode / encode-ray: item text vectors from an EMPTY vector cache, local engine (one process,
  written chunk by chunk into a memory-mapped vectors.npy) or a local Ray instance (--ray-cpus CPUs,
  one encoder actor per CPU); --encode-max caps the items (full_catalog_s_extrapolated: the whole
  prepared catalogue at the measured items/s).
- train: one epoch of SASRec and its validation, one thread; epoch_seconds is the epoch alone. Full
  softmax (chunked cross-entropy) up to 100k items, sampled softmax (2048 shared negatives, log-q)
  above. --train-steps N runs only the epoch's first N batches and extrapolates the epoch
  (epoch_seconds_extrapolated = seconds per step x steps per epoch); --valid-users N validates on a
  sample of N users (the others' validation targets are masked), as full ranking of every user on
  a 1M catalogue is an evaluation job of its own.
- train-ray: the same epoch on Ray Train (DDP, gloo, --ray-cpus workers of one thread each);
  seconds include starting Ray and the workers, epoch_seconds is the epoch alone.
- evaluate: full-ranking test evaluation of that model on --eval-users users (the same process as
  train; its peak is the peak of train + evaluate).

--model arborec trains the ArboRec model instead of SASRec (category tree for its level heads,
fixed text_weight 1.0, no weight search): item vectors from <work>/vectors.npy when it holds one row
per prepared item (np.save of `arborec encode`'s output), else random unit vectors (seed 0) saved
there, memory-mapped either way (the record says which: vectors=encoded|random; random vectors
time the model, they do not make it good).

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
           "--ray-cpus", str(args.ray_cpus), "--encode-max", str(args.encode_max),
           "--train-steps", str(args.train_steps), "--valid-users", str(args.valid_users), "--model", args.model]
    import arborec  # the stage processes import the same arborec as this one

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(arborec.__file__).resolve().parent.parent)}
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"stage": stage, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"], "load_1min": load}
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record["load_1min"] = round(load, 2)
    record["load_1min_end"] = round(os.getloadavg()[0], 2)
    return record


def sampled_validation(split, n_users: int):
    """The split with only ``n_users`` sampled validation users (seed 0; the others' targets masked), or as is for 0.

    Full ranking of every user on a 1M catalogue is an evaluation job of its own, not part of an epoch."""
    if n_users <= 0:
        return split
    import dataclasses

    import numpy as np

    valid = split.eval_users("valid")
    keep = np.zeros(split.n_users, dtype=bool)
    keep[np.random.default_rng(0).choice(valid, min(n_users, len(valid)), replace=False)] = True
    return dataclasses.replace(split, valid_target=np.where(keep, split.valid_target, -1))


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
        n_catalog = len(catalog)
        catalog = catalog.iloc[: args.encode_max] if args.encode_max > 0 else catalog
        t0 = time.perf_counter()  # loading the tables is prepare's business
        with tempfile.TemporaryDirectory() as cache:
            encoder = TextEncoder(threads=1)
            if stage == "encode":
                vectors = encode_items(catalog, encoder, cache_dir=cache, out=Path(cache) / "vectors.npy")
            else:
                from arborec.scale import encode_items_ray, ray_session

                with ray_session(num_cpus=args.ray_cpus):
                    vectors = encode_items_ray(catalog, encoder, cache_dir=cache, actors=args.ray_cpus)
        rate = len(vectors) / (time.perf_counter() - t0)
        out.update(n_items=len(vectors), backend=encoder.backend_, items_per_s=round(rate, 1),
                   catalog_items=n_catalog, full_catalog_s_extrapolated=round(n_catalog / rate, 1))
    elif stage == "train-ray":
        from arborec.baselines import SASRec
        from arborec.data import PreparedData, leave_one_out
        from arborec.scale import fit_ray, ray_session

        split = sampled_validation(leave_one_out(PreparedData.load(prepared)), args.valid_users)
        t0 = time.perf_counter()
        with ray_session(num_cpus=args.ray_cpus):
            model = fit_ray(SASRec(max_epochs=1, seed=0), split, workers=args.ray_cpus)
        epoch = model.history_[-1]
        out.update(epoch_seconds=round(epoch["seconds"], 2), valid_seconds=round(epoch["eval_seconds"], 2),
                   valid_users=len(split.eval_users("valid")), workers=args.ray_cpus, loss=round(epoch["loss"], 4),
                   sampled_softmax=bool(split.n_items > model.sampled_above))
    elif stage in ("train", "evaluate"):
        from arborec.baselines import SASRec
        from arborec.data import PreparedData, leave_one_out
        from arborec.evaluate import evaluate

        split = leave_one_out(PreparedData.load(prepared))
        out.update(load_seconds=round(time.perf_counter() - t0, 2), load_peak_mb=peak())
        fit_split = sampled_validation(split, args.valid_users)
        steps = {}
        if args.train_steps > 0:  # only the epoch's first N batches; the epoch is extrapolated
            import arborec.sequential._recommender as sequential

            order = sequential.batch_order

            def first_batches(*a, **k):
                batches = order(*a, **k)
                steps.update(total=len(batches), run=min(args.train_steps, len(batches)))
                return batches[: args.train_steps]

            sequential.batch_order = first_batches
        fit_kwargs, vectors = {}, "-"
        if args.model == "arborec":
            from arborec.hierarchy import tree_from_categories
            from arborec.model import ArboRec

            data = PreparedData.load(prepared)
            path = work / "vectors.npy"
            vectors = "encoded"
            if not path.exists() or np.load(path, mmap_mode="r").shape[0] != data.n_items:
                rng, mapped = np.random.default_rng(0), np.lib.format.open_memmap(
                    path, mode="w+", dtype=np.float32, shape=(data.n_items, 384))
                for s in range(0, data.n_items, 50_000):  # chunk by chunk: this process's peak stays the model's
                    rows = rng.normal(size=(min(50_000, data.n_items - s), 384)).astype(np.float32)
                    mapped[s:s + len(rows)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
                mapped.flush()
                del mapped
                vectors = "random"
            fit_kwargs = dict(data=data, vectors=np.load(path, mmap_mode="r"), tree=tree_from_categories(data.catalog))
            model = ArboRec(max_epochs=1, text_weight=1.0, seed=0)
        else:
            model = SASRec(max_epochs=1, seed=0)
        out.update(model=args.model, vectors=vectors, setup_peak_mb=peak())
        t0 = time.perf_counter()
        model = model.fit(fit_split, **fit_kwargs)
        epoch = model.history_[-1]
        out.update(train_seconds=round(time.perf_counter() - t0, 2), train_peak_mb=peak(),
                   epoch_seconds=round(epoch["seconds"], 2),  # the epoch without its validation
                   valid_seconds=round(epoch["eval_seconds"], 2), valid_users=len(fit_split.eval_users("valid")),
                   sampled_softmax=bool(split.n_items > model.sampled_above), loss=round(epoch["loss"], 4))
        if steps:
            out.update(steps_run=steps["run"], steps_per_epoch=steps["total"],
                       seconds_per_step=round(epoch["seconds"] / steps["run"], 3),
                       epoch_seconds_extrapolated=round(epoch["seconds"] / steps["run"] * steps["total"], 1))
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
    parser.add_argument("--train-steps", type=int, default=0,
                        help="train only this many batches of the epoch and extrapolate (0: the whole epoch)")
    parser.add_argument("--valid-users", type=int, default=0, help="validate on this many sampled users (0: all)")
    parser.add_argument("--model", default="sasrec", choices=("sasrec", "arborec"), help="the model trained")
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
                "train_steps": args.train_steps, "valid_users": args.valid_users, "model": args.model,
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
