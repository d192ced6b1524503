"""What the commands share: the data, engine and model options, --param values, the prepared dataset."""

from __future__ import annotations

import argparse
import json

from arborec.diagnostics import ArborecError


EPILOG_DATA = (
    "DATA is a registered dataset name (see `arborec datasets`), 'synthetic' (generated, no files needed), "
    "a folder in any supported layout, or a table of events (.csv, .tsv, .parquet; one row per event) whose "
    "user, item, time, title and category columns are found by their usual names (user_id, customer, sku, "
    "timestamp, title, category...; --columns names the others, --catalog adds a table of items). Named "
    "datasets are looked for in --data-dir, then in $ARBOREC_DATA_DIR, then in the cache; they are "
    "downloaded when online."
)


def add_data_args(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    if multiple:
        p.add_argument("--data", required=True, action="append", metavar="DATA",
                       help="dataset name, folder or table file (repeat for several)")
    else:
        p.add_argument("--data", required=True, metavar="DATA", help="dataset name, folder or table file")
    p.add_argument("--data-dir", help="a folder holding <name>/ dataset folders (else $ARBOREC_DATA_DIR)")
    p.add_argument("--min-rating", type=float, default=None, help="keep events with rating >= this")
    p.add_argument("--user-core", type=int, default=5, help="minimum events per user, k-core (default: 5)")
    p.add_argument("--item-core", type=int, default=5, help="minimum events per item, k-core (default: 5)")
    p.add_argument("--repeats", choices=("first", "last", "all"), default="first",
                   help="repeated (user, item) pairs: keep the first, the last, or all (default: first)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the prepared-data cache")
    add_table_args(p)


def add_table_args(p: argparse.ArgumentParser) -> None:
    """--columns and --catalog: how a table file given as --data is read."""
    p.add_argument("--columns", metavar="ROLE=COLUMN,...",
                   help="with a table file as --data: the columns whose names are not the usual ones, e.g. "
                        "user=customer_no,item=article,time=bought_at,title=label (roles: user, item, time, "
                        "rating, title, category, brand, description, genres, tags, year)")
    p.add_argument("--catalog", metavar="FILE",
                   help="with a table file as --data: a table of items (one row each: its id and text columns); "
                        "else item text is read from the events table")


def add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default, no Ray needed); ray: a Ray Data job (pip install "
                        "\"arborec[ray]\")")
    p.add_argument("--address", default=None,
                   help="with --engine ray: an existing cluster ('auto', or ray://HEAD:10001); default: start a "
                        "local Ray instance on this machine's CPUs")
    p.add_argument("--actors", type=int, default=2,
                   help="with --engine ray: worker actors (training: DDP workers), 1 CPU each (default: 2)")


def add_model_args(p: argparse.ArgumentParser, multiple: bool) -> None:
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


def prepared(args, name: str):
    from arborec.data import PrepareConfig, load_prepared

    config = PrepareConfig(min_rating=args.min_rating, user_core=args.user_core, item_core=args.item_core,
                           repeats=args.repeats)
    return load_prepared(name, data_dir=args.data_dir, config=config, use_cache=not args.no_cache,
                         **table_options(args))


def table_options(args) -> dict:
    """The column mapping and catalogue of a table file given as --data (load_prepared's keywords)."""
    from arborec.data.table_file import parse_columns

    return {"columns": parse_columns(args.columns) or None, "catalog": args.catalog}


def parse_params(pairs: list[str], model: str) -> dict:
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


def split_list(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def model_params(name: str, pairs: list[str], seed: int) -> dict:
    """The parameters of registered model ``name``: its --param values, and --seed when the model takes one."""
    from arborec.recommenders import MODELS

    if name not in MODELS:
        raise ArborecError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    params = parse_params(pairs, name)
    return {"seed": seed, **params} if "seed" in MODELS[name]().get_params() else params
