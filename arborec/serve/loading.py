"""Build a ready `InterestService` from a prepared dataset and a harness recommender (or an arborec bundle)."""

from __future__ import annotations

import gc
import time

import numpy as np

from arborec.diagnostics import ConfigError, logger
from arborec.serve.catalog import ServedCatalog
from arborec.serve.scorers import HistoryScorer, ModelScorer
from arborec.serve.service import InterestService
from arborec.serve.settings import ServeSettings
from arborec.serve.store import Store


def store_for(settings: ServeSettings) -> Store:
    """The store the settings name, with their pseudonymisation secret."""
    secret = settings.pseudonym_key.get_secret_value() if settings.pseudonym_key is not None else None
    return Store(settings.db_url, settings.sqlite_synchronous, pseudonym_key=secret)


def full_histories(data) -> dict[str, np.ndarray]:
    """user id -> every item index of the user, oldest first (the prepared interactions are time-ordered)."""
    users = data.interactions["user_idx"].to_numpy()
    items = data.interactions["item_idx"].to_numpy().astype(np.int64)
    bounds = np.cumsum(np.bincount(users, minlength=data.n_users))[:-1]
    return {str(uid): seq for uid, seq in zip(data.user_ids, np.split(items, bounds))}


def service_from_data(data, recommender, settings: ServeSettings, *, vectors: np.ndarray | None = None,
                      tree=None, encoder=None, max_levels: int = 3) -> InterestService:
    """An `InterestService` over ``data`` (a PreparedData) scoring with a FITTED harness ``recommender``.

    ``vectors``: the catalogue's text vectors (default: ``arborec.text.encode_items``, cached);
    ``tree``: an InterestTree over the items (default: ``arborec.hierarchy.build_tree``: the category
    paths when the catalogue has informative ones, else a tree learned from the vectors).
    """
    if vectors is None:
        from arborec.text import TextEncoder, encode_items

        encoder = encoder or TextEncoder(threads=1)
        vectors = encode_items(data.catalog, encoder)
    if tree is None:
        from arborec.hierarchy import build_tree

        tree = build_tree(data, vectors, source="auto", depth=max_levels)
    counts = np.bincount(data.interactions["item_idx"].to_numpy(), minlength=data.n_items)
    catalog = ServedCatalog(data.item_ids, data.catalog["title"].tolist(), vectors, tree, counts)
    scorer = HistoryScorer(recommender, tree, max_history=settings.max_history, short_window=settings.short_window)
    store = store_for(settings)
    return InterestService(scorer, catalog, store, settings, base_histories=full_histories(data), encoder=encoder,
                           name=getattr(recommender, "name", type(recommender).__name__))


def service_from_model(model, settings: ServeSettings, *, data=None, encoder=None) -> InterestService:
    """An `InterestService` over a fitted arborec model (``arborec.model.load_bundle(path)``).

    The bundle gives the items, their text vectors, the tree, popularity and (when saved) the users'
    histories; ``data`` (a PreparedData with the same item ids), when given, adds titles and histories.
    """
    from arborec.hierarchy import InterestTree

    item_ids = [str(i) for i in getattr(model, "item_ids_", range(model.n_items_))]
    titles = list(item_ids)
    histories: dict[str, np.ndarray] = {}
    if data is not None:
        title_of = dict(zip(data.catalog["item"].astype(str), data.catalog["title"].astype(str)))
        titles = [title_of.get(i, i) or i for i in item_ids]
        if list(map(str, data.item_ids)) == item_ids:
            histories = full_histories(data)
    if getattr(model, "user_histories_", None) is not None and not histories:
        h = model.user_histories_
        histories = {str(u): h.sequence(b).astype(np.int64) for b, u in enumerate(model.user_ids_)}
    tree = model.tree_
    served_tree = InterestTree(codes=tree.codes.copy(), parents=tree.parents, labels=tree.labels,
                               centroids=tree.centroids, source=tree.source, meta=tree.meta)
    catalog = ServedCatalog(item_ids, titles, np.asarray(model.vectors_, dtype=np.float32), served_tree,
                            np.asarray(model.item_counts_, dtype=np.float64))
    store = store_for(settings)
    return InterestService(ModelScorer(model), catalog, store, settings, base_histories=histories, encoder=encoder,
                           name="arborec")


def load_service(settings: ServeSettings, *, data: str | None = None, model: str = "ease", params: dict | None = None,
                 data_dir: str | None = None, bundle: str | None = None, seed: int = 0,
                 vectors: str | None = None, table: dict | None = None) -> InterestService:
    """What `arborec serve` runs: fit ``model`` on ``data``'s leave-one-out training split (or load ``bundle``).

    ``vectors``: a .npy file of the catalogue's text vectors (row i = item i), else they are encoded (cached).
    ``table``: ``columns`` and ``catalog`` for a table file given as ``data`` (see `arborec.data.load_prepared`).
    """
    table = table or {}
    if bundle is not None:
        try:
            from arborec.model import load_bundle
        except ImportError:
            raise ConfigError("--bundle needs the arborec model stage (arborec.model), which this build lacks; "
                              "serve a harness model with --data DATA --model NAME") from None
        prepared = None
        if data is not None:
            from arborec.data import load_prepared

            prepared = load_prepared(data, data_dir=data_dir, **table)
        return service_from_model(load_bundle(bundle), settings, data=prepared)
    if data is None:
        raise ConfigError("give --data DATA (with --model NAME) or --bundle PATH")
    from arborec.data import leave_one_out, load_prepared, make_synthetic, prepare
    from arborec.recommenders import MODELS, make_model

    t0 = time.perf_counter()
    prepared = prepare(make_synthetic()) if data == "synthetic" else load_prepared(data, data_dir=data_dir, **table)
    split = leave_one_out(prepared)
    params = dict(params or {})
    if model in MODELS and "seed" in MODELS[model]().get_params():
        params.setdefault("seed", seed)
    recommender = make_model(model, **params).fit(split, prepared)
    logger.info("%s fitted on %s in %.1f s", model, prepared.name, time.perf_counter() - t0)
    item_vectors = None
    if vectors is not None:
        item_vectors = np.load(vectors)
        if item_vectors.shape[0] != prepared.n_items:
            raise ConfigError(f"--vectors {vectors}: {item_vectors.shape[0]} rows, but {prepared.name} has "
                              f"{prepared.n_items} items")
    return service_from_data(prepared, recommender, settings, vectors=item_vectors)


def quiet_garbage_collector() -> None:
    """Keep the cyclic garbage collector's full passes out of request latency (call once the service is
    loaded, in the serving process: the settings are the whole process's).

    The loaded service is hundreds of thousands of long-lived objects (catalogue, model, store, caches). Python's
    full collections walk all of them: measured in a serving process applying event batches, they paused every
    thread for 40-180 ms, which was the whole p99 of recommendations during an event stream
    (benchmarks/results/serve_memory_1000000.md). What exists once the service is loaded is frozen (never walked
    again), and young collections run after 20,000 allocations instead of 700, so full passes become rare.
    Memory is still freed by reference counting as before; only reference cycles wait longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
