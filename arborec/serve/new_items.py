"""Items added while serving: their text rendered and encoded, their tree place and score borrowed from neighbours."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from arborec.serve.catalog import ServedCatalog
from arborec.serve.retrieval import ItemIndex
from arborec.serve.scorers import OnlineScorer
from arborec.serve.segments import ServedSegments
from arborec.serve.store import StoredItem

N_NEIGHBOURS = 10  # text neighbours a new item borrows its score from
NEIGHBOUR_TEMPERATURE = 0.05  # softmax temperature over their cosine similarities


def stored_items(new: list, encode: Callable[[list[str]], np.ndarray]) -> list[StoredItem]:
    """New items (objects with item, title, description, brand, category_path) as the store keeps them: each
    with its text, rendered as the catalogue's was, and its vector (``encode``: texts -> (n, d))."""
    from arborec.text import ItemTextTemplate

    frame = pd.DataFrame({"item": [it.item for it in new], "title": [it.title for it in new],
                          "brand": [it.brand for it in new], "description": [it.description for it in new],
                          "category_path": [list(it.category_path) for it in new]})
    texts = ItemTextTemplate(drop_root_category=False).render(frame)
    vectors = encode(texts)
    return [StoredItem(it.item, it.title, text, list(it.category_path), vec)
            for it, text, vec in zip(new, texts, vectors)]


def place_items(stored: list[StoredItem], catalog: ServedCatalog, scorer: OnlineScorer,
                segmentation: ServedSegments, text_index: ItemIndex, model_index: ItemIndex | None) -> list[dict]:
    """Append ``stored`` to the catalogue, the scorer, the segments and both indexes; returns, per item, its
    index, tree path and first text neighbours.

    A new item has no trained embedding: it borrows a softmax-weighted mix of its ``N_NEIGHBOURS`` closest
    known items by text, and the tree place its category path names (else its neighbours' place).
    """
    vectors = np.stack([s.vector for s in stored]).astype(np.float32)  # (n_new, d)
    neighbours, weights, codes = [], [], []
    n_known = catalog.n_items
    for vec, s in zip(vectors, stored):
        nb, sims = text_index.search(vec, N_NEIGHBOURS)
        nb, sims = nb[nb < n_known], sims[nb < n_known]  # neighbours among items already placed
        w = np.exp((sims - sims.max()) / NEIGHBOUR_TEMPERATURE)
        neighbours.append(nb)
        weights.append(w / w.sum())
        codes.append(catalog.place(s.category_path, nb))
    width = max(len(n) for n in neighbours)
    nb_arr = np.zeros((len(stored), width), dtype=np.int64)
    w_arr = np.zeros((len(stored), width), dtype=np.float32)
    for j, (nb, w) in enumerate(zip(neighbours, weights)):
        nb_arr[j, :len(nb)], w_arr[j, :len(w)] = nb, w
    # the catalogue first: a concurrent reader may then see tree rows without scores, never the reverse
    catalog.append([s.item_id for s in stored], [s.title for s in stored], vectors, np.stack(codes))
    segmentation.add_items(len(stored))
    scorer.add_items(nb_arr, w_arr)
    text_index.add(vectors)
    if model_index is not None:
        model_index.add(scorer.item_vectors()[model_index.n_items:])
    return [{"item": s.item_id, "index": n_known + j, "path": catalog.path_labels(n_known + j),
             "neighbours": [catalog.item_ids[i] for i in nb_arr[j, :3]]} for j, s in enumerate(stored)]
