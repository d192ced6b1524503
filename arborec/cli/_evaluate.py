"""Commands that measure models: evaluate, benchmark, suite."""

from __future__ import annotations

import sys
from pathlib import Path

from arborec.cli._common import EPILOG_DATA, add_data_args, add_model_args, model_params, prepared, split_list
from arborec.diagnostics import ArborecError, logger


def add_commands(sub) -> None:
    """Add this module's commands to the `arborec` sub-parsers ``sub``."""
    p = sub.add_parser("evaluate", help="fit one model and evaluate it with the common protocol",
                       description="Fit a model on the leave-one-out training split, select parameters on "
                                   "validation NDCG@10 (with --tune), evaluate once on test with full "
                                   "ranking, print the metric table and write a JSON result. Without --tune, "
                                   "an epoch-trained model keeps its training state beside the result "
                                   "(OUTPUT.training-state.pt) after every validation until the result is "
                                   "written: the same command run again after a stop continues the fit.",
                       epilog=EPILOG_DATA)
    add_data_args(p)
    add_model_args(p, multiple=False)
    p.add_argument("--bundle", help="evaluate this saved arborec bundle (from `arborec fit`) instead of fitting")
    p.add_argument("--output", help="JSON result file (default: runs/<data>-<model>.json)")
    p.add_argument("--ranks", metavar="PATH", help="also save the test target's rank of every test user (.npy, "
                   "users in the split's order) for a paired per-user comparison with another model's")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("benchmark", help="evaluate several models on one or more datasets; print one table",
                       description="Run every listed model through the common protocol on every dataset, "
                                   "write one JSON per run and a Markdown table, and compare the first model "
                                   "with each other one paired per test user (difference in NDCG@10, its 95% "
                                   "bootstrap interval and p-value: one seed each, a direction; `arborec suite` "
                                   "gives seeds and equal tuning).",
                       epilog=EPILOG_DATA)
    add_data_args(p, multiple=True)
    add_model_args(p, multiple=True)
    p.add_argument("--output-dir", default="runs", help="where JSON results and table.md go (default: runs)")
    p.set_defaults(run=cmd_benchmark)

    p = sub.add_parser("suite", help="the benchmark suite: datasets x models x seeds, tuned alike, resumable",
                       description="Tune every model on one seed with the same validation-only budget (Optuna, "
                                   "pruning on the validation figure), test the chosen setting once per seed "
                                   "(arborec and the two strongest other models get every seed), and write "
                                   "OUT/<dataset>.json records plus a report beside OUT (OUT.md: suite.md by "
                                   "default) with 95-percent intervals and paired per-user comparisons. "
                                   "Rerunning the same command continues where it "
                                   "stopped: finished runs and trials are kept.",
                       epilog="Datasets: ml-100k, amazon-beauty, amazon-toys, amazon-sports, ml-1m. Models and "
                              "their search spaces: arborec/suite/_config.py. Example: arborec suite --data-dir "
                              "../shared/data --datasets ml-100k --stop-after 120")
    p.add_argument("--datasets", default="ml-100k,amazon-beauty,amazon-toys,amazon-sports,ml-1m",
                   help="comma-separated suite datasets, run in this order (default: %(default)s)")
    p.add_argument("--models", default=None, help="comma-separated suite models (default: all of them)")
    p.add_argument("--data-dir", help="a folder holding <name>/ dataset folders (else $ARBOREC_DATA_DIR)")
    p.add_argument("--out", default="benchmarks/results/suite",
                   help="folder of the records, tuning journals and per-user ranks (default: %(default)s)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds; the first one tunes (default: %(default)s)")
    p.add_argument("--budget", type=int, default=None,
                   help="distinct settings tried per model and dataset (default: the dataset's own: 8 on ml-100k, "
                        "4 on the larger ones; the same for every model)")
    p.add_argument("--seeded-others", type=int, default=2, metavar="N",
                   help="besides arborec, the N other models with the best tuning-seed validation NDCG@10 run on "
                        "every seed (default: %(default)s)")
    p.add_argument("--device", default="auto",
                   help="torch device of the trainable models: cpu, cuda, or auto (cuda when torch sees one; default)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                   help="stop cleanly between runs after this many minutes (rerun to continue)")
    p.add_argument("--ablations", default=None, metavar="NAMES",
                   help="comma-separated arborec ablations to run on every seed with arborec's chosen setting, "
                        "after arborec: arborec-no-tree (no tree: no path nodes in the item table, no level heads), "
                        "arborec-no-text (no language-model vectors), arborec-no-long (no GRU stream), "
                        "arborec-no-short (no attention stream), arborec-static-text (item vectors from the fast "
                        "static encoder), arborec-no-pointer (no text pointer; read from arborec's own fit of each "
                        "seed when arborec runs in the same command, as training does not read it); the report "
                        "pairs each with the whole model (default: none)")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report (OUT.md) from the records")
    p.add_argument("--readme", metavar="PATH", help="also put the report's dataset sections between the marker lines "
                   "of this README (its results section)")
    p.set_defaults(run=cmd_suite)


def cmd_evaluate(args) -> int:
    from arborec.data import leave_one_out
    from arborec.evaluate import metric_table

    data = prepared(args, args.data)
    split = leave_one_out(data)
    out = Path(args.output or f"runs/{Path(args.data).name}-{args.model}.json")
    if args.bundle:
        record = _evaluate_bundle(args, data, split)
    else:
        record = _run_one(args, data, split, args.model, args.tune, out, ranks_to=args.ranks)
    _save_record(record, out)
    print(f"data: {data.name} ({data.source}); split {split.fingerprint()}")
    print(metric_table([record]))
    print(f"result written to {out}")
    return 0


def _evaluate_bundle(args, data, split) -> dict:
    import time

    from arborec.evaluate import evaluate, save_ranks
    from arborec.evaluate._report import result_record
    from arborec.model import load_bundle

    if args.model != "arborec":
        raise ArborecError(f"--bundle holds an arborec model; got --model {args.model}")
    model = load_bundle(args.bundle)
    if model.n_items_ != split.n_items:
        raise ArborecError(f"the bundle has {model.n_items_} items, {data.name} has {split.n_items}: "
                           "evaluate it on the data it was fitted on")
    t0 = time.perf_counter()
    valid = evaluate(model, split, "valid", progress=not args.quiet)
    test = evaluate(model, split, "test", progress=not args.quiet)
    if args.ranks:
        save_ranks(test.ranks, args.ranks)
    return result_record(dataset=data.name, stats=data.stats, split_hash=split.fingerprint(), model="arborec",
                         params=model.get_params(), seed=model.seed, valid=valid.to_dict(), test=test.to_dict(),
                         fit_seconds=0.0, eval_seconds=time.perf_counter() - t0,
                         command="arborec " + " ".join(sys.argv[1:]), extra={"bundle": str(args.bundle)})


def _state_of(out: Path) -> Path:
    """Where the fit whose record goes to ``out`` keeps its training state until the record is written."""
    return out.with_name(out.name + ".training-state.pt")


def _save_record(record: dict, out: Path) -> None:
    """Write ``record`` to ``out``; only then is the fit's training state no longer needed."""
    from arborec.evaluate import write_json

    write_json(record, out)
    _state_of(out).unlink(missing_ok=True)


def _run_one(args, data, split, model_name: str, tune: bool, out: Path, ranks_to: str | None = None) -> dict:
    from arborec.recommenders import MODELS, make_model
    from arborec.evaluate import run_model

    params = model_params(model_name, args.param, args.seed)
    space = {k: v for k, v in MODELS[model_name].search_space.items() if k not in params} if tune else {}
    logger.info("%s on %s: fitting%s", model_name, data.name, " (tuning on validation)" if space else "")
    return run_model(lambda **p: make_model(model_name, **p), split, data, space=space, params=params,
                     seed=args.seed, progress=not args.quiet, command="arborec " + " ".join(sys.argv[1:]),
                     resume=_state_of(out), ranks_to=ranks_to)  # a resumed fit says so in its own log line


def cmd_benchmark(args) -> int:
    from arborec.data import leave_one_out
    from arborec.evaluate import metric_table

    out_dir = Path(args.output_dir)
    no_tune = set(filter(None, args.no_tune.split(",")))
    records, comparisons = [], []
    for name in args.data:
        data = prepared(args, name)
        split = leave_one_out(data)
        print(f"data: {data.name} ({data.source}): {data.n_users:,} users, {data.n_items:,} items, "
              f"{data.stats['n_interactions']:,} events; split {split.fingerprint()}", flush=True)
        ranks = {}
        for model_name in split_list(args.models):
            out = out_dir / f"{Path(name).name}-{model_name}.json"
            ranks[model_name] = out.with_name(out.stem + "_ranks.npy")
            record = _run_one(args, data, split, model_name, args.tune and model_name not in no_tune, out,
                              ranks_to=str(ranks[model_name]))
            _save_record(record, out)
            records.append(record)
            print(metric_table([record]).splitlines()[-1], flush=True)
        comparisons += _paired_lines(data.name, ranks)
    table = metric_table(records)
    (out_dir / "table.md").write_text(metric_table(records, markdown=True) + "\n"
                                      + "".join(f"\n- {line}" for line in comparisons) + "\n")
    print("\n" + table)
    if comparisons:
        print("\npaired per test user, NDCG@10 (one seed each: a direction, not a verdict over seeds):")
        print("\n".join(f"  {line}" for line in comparisons))
    print(f"\nresults in {out_dir}/ (one JSON and per-user ranks per run, table.md)")
    return 0


def _paired_lines(dataset: str, ranks: dict) -> list[str]:
    """The first model against each other one on ``dataset``, paired per test user, one line each."""
    import numpy as np

    from arborec.evaluate import paired_comparison, per_user_ndcg

    names = list(ranks)
    if len(names) < 2:
        return []
    first = per_user_ndcg(np.load(ranks[names[0]]))
    lines = []
    for other in names[1:]:
        c = paired_comparison(first, per_user_ndcg(np.load(ranks[other])))
        lines.append(f"{dataset}: {names[0]} against {other}: {c.diff:+.4f} ({c.relative:+.1%}), 95% CI "
                     f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}], p = {c.p_value:.2g} over {c.n_users:,} users: {c.verdict}")
    return lines


def cmd_suite(args) -> int:
    import shlex

    from arborec.suite import MODELS, StopRequested, SuitePlan, report_path, run_suite, update_readme, write_report

    if args.report_only:
        print(f"report: {write_report(args.out)}")
        if args.readme:
            update_readme(args.readme, args.out)
            print(f"results section of {args.readme} rewritten from it")
        return 0
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    plan = SuitePlan(datasets=split_list(args.datasets), models=split_list(args.models) or list(MODELS),
                     out_dir=Path(args.out), data_dir=args.data_dir,
                     seeds=tuple(int(s) for s in split_list(args.seeds)), budget=args.budget,
                     device=args.device, stop_after=None if args.stop_after is None else 60 * args.stop_after,
                     n_seeded_others=args.seeded_others, ablations=split_list(args.ablations))
    try:
        run_suite(plan, command="arborec " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except StopRequested as exc:
        print(f"stopped: {exc}")
    if args.readme:
        update_readme(args.readme, args.out)
    print(f"records in {args.out}/, report {report_path(args.out)}")
    return 0
