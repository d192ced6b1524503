"""Commands of the service: serve, and forget (a user's data out of bundles and stores)."""

from __future__ import annotations

import sys

from arborec.cli._common import EPILOG_DATA, add_table_args, parse_params, table_options
from arborec.diagnostics import ArborecError


def add_commands(sub) -> None:
    """Add this module's commands to the `arborec` sub-parsers ``sub``."""
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
    add_table_args(p)
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

    p = sub.add_parser("forget", help="remove a user's history from a bundle (and, with --db, from a service store)",
                       description="Rewrite a bundle without the known histories of the given users (bundles hold "
                                   "them only when written with `arborec fit --keep-histories`); with --db, also "
                                   "delete them from a service store as DELETE /users/{id} does (with a tombstone). "
                                   "Stop a running server first or use the API: its memory is not touched here.")
    p.add_argument("--bundle", action="append", default=[], help="a bundle folder (repeatable)")
    p.add_argument("--db", help="a service store URL (sqlite:///file.db or postgresql+psycopg://...)")
    p.add_argument("--user", action="append", required=True, help="a user id (repeatable)")
    p.set_defaults(run=cmd_forget)


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
    service = load_service(settings, data=args.data, model=args.model, params=parse_params(args.param, args.model),
                           data_dir=args.data_dir, bundle=args.bundle, seed=args.seed, table=table_options(args),
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
