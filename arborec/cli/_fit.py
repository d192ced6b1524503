"""Commands that train and use one model: models, fit, recommend, batch-recommend."""

from __future__ import annotations

from pathlib import Path

from arborec.cli._common import (EPILOG_DATA, add_data_args, add_engine_args, add_model_args, model_params,
                                 parse_params, prepared)
from arborec.diagnostics import ArborecError


def add_commands(sub) -> None:
    """Add this module's commands to the `arborec` sub-parsers ``sub``."""
    p = sub.add_parser("models", help="list the models --model accepts, with their tunable parameters",
                       description="List every registered recommender, what it is, and the grid --tune searches.")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("fit", help="train the arborec model on a dataset and save it as a bundle",
                       description="Train the hierarchical long/short-term model (arborec) on the leave-one-out "
                                   "training split, with early stopping on validation NDCG@10, and save a bundle "
                                   "folder: model.safetensors (weights), config.json, items.json (external item "
                                   "ids), tree.npz (interest tree), vectors.npy (item text vectors); the users' "
                                   "known histories only with --keep-histories (for `arborec recommend`). A stopped "
                                   "fit continues: until the bundle is written, the training state is kept in the "
                                   "bundle folder (training-state.pt) after every validation, and the same command "
                                   "again resumes from it (other parameters or data start over).",
                       epilog=EPILOG_DATA)
    add_data_args(p)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="an ArboRec parameter (repeatable; VALUE parsed as JSON), e.g. max_len=200, dropout=0.3, regime=every, "
                        "use_text=false; see `python -c 'import arborec.model; help(arborec.model.ArboRec)'`")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--output", help="bundle folder (default: runs/<data>-arborec)")
    p.add_argument("--keep-histories", action="store_true",
                   help="also save every user's known history in the bundle (personal data; needed by "
                        "`arborec recommend --user`). Default: weights and item data only")
    p.add_argument("--forget-store", metavar="DB_URL",
                   help="leave out the users deleted through this service store (DELETE /users/{id})")
    add_engine_args(p)  # ray: Ray Train (DDP, gloo on CPU), --actors workers, the same bundle
    p.set_defaults(run=cmd_fit)

    p = sub.add_parser("recommend", help="top-k items for one user from a saved bundle, optionally explained",
                       description="Load a bundle written by `arborec fit`, read the user's known history from "
                                   "it, and print the top-k items not yet seen. With --explain, each item shows "
                                   "its interest-tree path and the user's long- and short-term probability of "
                                   "each node on it (the model's own level distributions).")
    p.add_argument("--bundle", required=True, help="bundle folder written by `arborec fit`")
    p.add_argument("--user", required=True, help="external user id (as in the dataset)")
    p.add_argument("-k", type=int, default=10, help="how many items (default: 10)")
    p.add_argument("--explain", action="store_true", help="show the interest (tree path) each item serves")
    p.set_defaults(run=cmd_recommend)

    p = sub.add_parser("batch-recommend", help="top-k items and interest profiles for EVERY user, as Parquet",
                       description="Fit a model on the leave-one-out training split, then score every user's full "
                                   "history (all but the test event with --stage test) and write one row per user: "
                                   "user_idx, the k best unseen items with scores and, with --profiles, the "
                                   "strongest nodes of each level of the user's interest profile (catalogue "
                                   "categories). --engine ray runs the scoring as a Ray Data job.",
                       epilog=EPILOG_DATA)
    add_data_args(p)
    add_model_args(p, multiple=False)
    p.add_argument("--k", type=int, default=20, help="items per user (default: %(default)s)")
    p.add_argument("--stage", choices=("valid", "test"), default="test",
                   help="history used: 'valid' = training events only, 'test' = all but the last (default)")
    p.add_argument("--profiles", action="store_true", help="add per-level profile nodes (needs category paths)")
    p.add_argument("--out", required=True, help="Parquet file (local engine) or folder of Parquet files (ray)")
    add_engine_args(p)
    p.set_defaults(run=cmd_batch_recommend)


def cmd_models(args) -> int:
    from arborec.recommenders import MODELS

    for name, cls in MODELS.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<10} {summary}")
        if cls.search_space:
            print(f"{'':<10} --tune searches {cls.search_space}")
    return 0


def cmd_fit(args) -> int:
    import time

    import torch

    from arborec.data import leave_one_out
    from arborec.evaluate import evaluate
    from arborec.model import ArboRec, save_fitted

    if args.threads:
        torch.set_num_threads(args.threads)
    data = prepared(args, args.data)
    if args.forget_store:
        from arborec.serve.forget import without_forgotten
        from arborec.serve.store import Store

        data = without_forgotten(data, Store(args.forget_store))
    split = leave_one_out(data)
    params = {"seed": args.seed, "verbose": not args.quiet, **parse_params(args.param, "arborec")}
    try:
        model = ArboRec(**params)
    except TypeError as exc:
        raise ArborecError(f"--param: {exc}") from None
    output = Path(args.output or f"runs/{Path(args.data).name}-arborec")
    t0 = time.perf_counter()
    if args.engine == "ray":  # Ray Train, DDP over --actors workers; early stopping on rank 0's validation
        from arborec.scale import fit_ray, ray_session

        with ray_session(args.address):
            fit_ray(model, split, data, workers=args.actors)
    else:
        model.resume_path = output / "training-state.pt"  # a stopped fit continues from its last validation
        model.fit(split, data)
    fit_s = time.perf_counter() - t0
    valid = evaluate(model, split, "valid").metrics
    out = save_fitted(model, data, output, keep_histories=args.keep_histories)
    (output / "training-state.pt").unlink(missing_ok=True)
    print(f"data: {data.name} ({data.source}); split {split.fingerprint()}")
    if getattr(model, "resumed_epochs_", 0):
        print(f"continued a stopped fit after its epoch {model.resumed_epochs_}")
    print(f"fitted in {fit_s:.1f} s: best epoch {model.best_epoch_} of {len(model.history_)}, "
          f"{model.epoch_seconds_:.1f} s/epoch; text weight {model.text_weight_}, "
          f"text pointer {model.pointer_weight_} (temperature {model.pointer_temperature_})")
    print(f"valid NDCG@10 {valid['ndcg@10']:.4f}  Recall@10 {valid['recall@10']:.4f}")
    print(f"bundle written to {out}")
    return 0


def cmd_recommend(args) -> int:
    import numpy as np

    from arborec.model import load_bundle

    model = load_bundle(args.bundle)
    if getattr(model, "user_ids_", None) is None:
        raise ArborecError(f"{args.bundle} has no user histories (bundles carry none by default): refit it with "
                           "`arborec fit --keep-histories`")
    try:
        row = model.user_ids_.index(str(args.user))
    except ValueError:
        raise ArborecError(f"user {args.user!r} is not in the bundle ({len(model.user_ids_):,} users)") from None
    history = model.user_histories_.sequence(row).tolist()
    state = model.advance(model.init_state(), history)
    scores = model.score_state(state)
    scores[history] = -np.inf
    top = np.argsort(-scores, kind="stable")[:args.k]
    print(f"user {args.user}: {len(history)} known events; top {len(top)}")
    reasons = model.explain(state, top.tolist()) if args.explain else [None] * len(top)
    for rank, (item, why) in enumerate(zip(top, reasons), 1):
        print(f"{rank:>3}. {model.item_ids_[item]}  score {scores[item]:.3f}")
        if why:
            path = " > ".join(f"{label} (long {lp:.2f}, short {sp:.2f})"
                              for label, lp, sp in zip(why["path"], why["long"], why["short"]))
            print(f"     serves: {path}")
    return 0


def cmd_batch_recommend(args) -> int:
    import numpy as np

    from arborec.data import leave_one_out
    from arborec.recommenders import make_model
    from arborec.scale import batch_recommend, batch_recommend_ray, check_engine, ray_session

    check_engine(args.engine)
    params = model_params(args.model, args.param, args.seed)
    data = prepared(args, args.data)
    split = leave_one_out(data)
    model = make_model(args.model, **params).fit(split, data)
    builder = None
    if args.profiles:
        from arborec.hierarchy import tree_from_categories
        from arborec.profiles import ProfileBuilder

        users = np.arange(split.n_users)
        builder = ProfileBuilder(tree_from_categories(data.catalog)).fit(split.histories(args.stage, users))
    if args.engine == "ray":
        with ray_session(args.address):
            out = batch_recommend_ray(model, split, args.out, k=args.k, stage=args.stage, profiles=builder,
                                      actors=args.actors)
    else:
        batch_recommend(model, split, k=args.k, stage=args.stage, profiles=builder, output=args.out)
        out = args.out
    print(f"{data.name}: top-{args.k} items{' and profiles' if builder else ''} of {split.n_users:,} users "
          f"({args.model}, engine {args.engine}) written to {out}")
    return 0
