"""Commands that show what arborec learned: report (HTML), demo (the main job end to end)."""

from __future__ import annotations

from arborec.cli._common import EPILOG_DATA, add_data_args, prepared
from arborec.diagnostics import ArborecError


def add_commands(sub) -> None:
    """Add this module's commands to the `arborec` sub-parsers ``sub``."""
    p = sub.add_parser("report", help="write a self-contained HTML report: interest tree, user profiles, segments",
                       description="Build every user's interest profile over the interest tree (long term: the "
                                   "whole history, decayed; short term: the last events), cluster users into "
                                   "segments, and write one HTML file (inline SVG figures, no network needed to "
                                   "open it): the tree as a sunburst, the segment map (a 2-D projection coloured "
                                   "by segment, with labels), and a few users' long- versus short-term interests "
                                   "with representative items.",
                       epilog=EPILOG_DATA)
    add_data_args(p)
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


def cmd_report(args) -> int:
    import time

    import numpy as np

    from arborec.data import Histories
    from arborec.hierarchy import InterestTree, build_tree
    from arborec.profiles import ProfileBuilder, Segmenter, fit_segments, write_report

    t0 = time.perf_counter()
    data = prepared(args, args.data)
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
