"""The one protocol the service scores users with (`OnlineScorer`), and its adapter over any harness recommender."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from arborec.data import Histories
from arborec.hierarchy import InterestTree


@runtime_checkable
class OnlineScorer(Protocol):
    """A model that keeps a small per-user state and scores the whole catalogue from it.

    States are plain dicts the service stores per user; ``update`` returns a NEW state (the old
    one is left as it was, so a failed write leaves the served state untouched).
    """

    n_items: int  # items it scores, including those added with add_items

    def new_state(self) -> dict:
        """The state of a user with no events."""

    def update(self, state: dict, items: np.ndarray) -> dict:
        """The state after the user's new events on ``items`` (item indices, oldest first)."""

    def scores(self, state: dict) -> np.ndarray:
        """(n_items,) float32 scores of every item for the user's next event; higher is better."""

    def query(self, state: dict) -> np.ndarray | None:
        """(d,) float32 vector whose inner product with ``item_vectors()`` gives ``scores``; None if there is none."""

    def item_vectors(self) -> np.ndarray | None:
        """(n_items, d) float32 item vectors of ``query``'s space, or None."""

    def interests(self, state: dict) -> dict[str, list[np.ndarray]]:
        """{"long": [...], "short": [...]}: one (n_nodes_l,) weight array per tree level (not normalised)."""

    def interests_batch(self, histories: Histories) -> dict[str, list[np.ndarray]]:
        """``interests`` of many users at once from their whole histories (item indices, oldest first):
        one (B, n_nodes_l) array per level, row b as ``interests`` of the state after history b. The
        service profiles every known user with it at start (a scorer without it is run user by user)."""

    def recent(self, state: dict) -> np.ndarray:
        """Item indices the user has seen recently, oldest first (filtered from recommendations)."""

    def add_items(self, neighbours: np.ndarray, weights: np.ndarray) -> None:
        """Make new items scorable: item ``n_items + j`` is like the known items ``neighbours[j]``
        (``(n_new, k)`` indices) with ``weights[j]`` (rows summing to 1)."""


class _BorrowedItems:
    """New items as weighted mixes of known items (their text neighbours): scores, embeddings, history proxies.

    Needs ``n_base_``, ``n_items``, ``_neighbours``, ``_weights``, ``_proxy`` and ``_item_vectors`` (or None).
    """

    def _init_borrowed(self, n_base: int) -> None:
        self.n_base_ = int(n_base)
        self.n_items = self.n_base_
        self._neighbours = np.zeros((0, 1), dtype=np.int64)
        self._weights = np.zeros((0, 1), dtype=np.float32)
        self._proxy = np.arange(self.n_base_, dtype=np.int64)  # item -> known item standing for it

    # -- new items --------------------------------------------------------------------------------
    def add_items(self, neighbours: np.ndarray, weights: np.ndarray) -> None:
        neighbours = np.asarray(neighbours, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float32)
        base_nb, base_w = self._to_base(neighbours, weights)  # every new item as a mix of known items
        self._neighbours = np.vstack([_pad(self._neighbours, base_nb.shape[1], 0), base_nb]) \
            if len(self._neighbours) else base_nb
        self._weights = np.vstack([_pad(self._weights, base_w.shape[1], 0.0), base_w]) \
            if len(self._weights) else base_w
        self._proxy = np.concatenate([self._proxy, base_nb[np.arange(len(base_nb)), base_w.argmax(1)]])
        if self._item_vectors is not None:
            new = np.einsum("nk,nkd->nd", base_w, self._item_vectors[base_nb])  # (n_new, D)
            self._item_vectors = np.vstack([self._item_vectors, new.astype(np.float32)])
        self.n_items += len(neighbours)

    def _to_base(self, neighbours: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rewrite neighbours that are themselves added items as their own known-item mixes (same width)."""
        k = neighbours.shape[1]
        out_nb = np.zeros_like(neighbours)
        out_w = np.zeros_like(weights)
        for j in range(len(neighbours)):
            mix: dict[int, float] = {}
            for nb, w in zip(neighbours[j], weights[j]):
                if nb < self.n_base_:
                    mix[int(nb)] = mix.get(int(nb), 0.0) + float(w)
                else:  # an earlier added item: already a mix of known items
                    row = nb - self.n_base_
                    for nb2, w2 in zip(self._neighbours[row], self._weights[row]):
                        mix[int(nb2)] = mix.get(int(nb2), 0.0) + float(w) * float(w2)
            top = sorted(mix.items(), key=lambda kv: -kv[1])[:k]
            total = sum(w for _, w in top) or 1.0
            for c, (nb, w) in enumerate(top):
                out_nb[j, c], out_w[j, c] = nb, w / total
        return out_nb, out_w

    def _extend(self, base: np.ndarray) -> np.ndarray:
        """Scores of the added items (weighted means of known items' scores) appended to ``base``."""
        if self.n_items == self.n_base_:
            return base
        added = (base[self._neighbours] * self._weights).sum(1)  # (n_added,)
        return np.concatenate([base, added.astype(np.float32)])


class HistoryScorer(_BorrowedItems):
    """`OnlineScorer` over any fitted harness `Recommender`: the state is the user's recent history.

    Scores come from ``recommender.score(users, Histories)`` on the recent history (so EASE, ItemKNN,
    SASRec... all serve unchanged); interests are counted over ``tree``: long term over every event,
    short term over the last ``short_window``. Sequential recommenders (SASRec, GRU4Rec) also expose
    their last hidden state and item embeddings, so retrieval can run as an inner-product search.

    Items added later borrow from their text neighbours: a new item's score (and embedding) is the
    weighted mean of its neighbours', and in a history it stands for its nearest neighbour.

    Parameters
    ----------
    recommender : a fitted `arborec.baselines.Recommender`
    tree : InterestTree whose ``codes`` cover the recommender's items (rows for added items are
        appended by the service)
    max_history : most recent events kept in the state
    short_window : events that count as short term
    """

    def __init__(self, recommender, tree: InterestTree, max_history: int = 200, short_window: int = 10):
        self.recommender = recommender
        self.tree = tree
        self.max_history = max_history
        self.short_window = short_window
        self._init_borrowed(tree.n_items)
        module = getattr(recommender, "module_", None)
        self._sequential = module is not None and hasattr(module, "item_emb")
        self._item_vectors = None
        if self._sequential:
            self._item_vectors = module.item_emb.weight[1:].detach().float().numpy().copy()  # (n_items, D)

    # -- state ------------------------------------------------------------------------------------
    def new_state(self) -> dict:
        return {"items": np.zeros(0, dtype=np.int64), "long": [np.zeros(n) for n in self.tree.level_sizes], "n": 0}

    def update(self, state: dict, items: np.ndarray) -> dict:
        items = np.asarray(items, dtype=np.int64)
        codes = self.tree.codes[items]  # (n_new, L)
        long = [lv + np.bincount(codes[:, level], minlength=len(lv)) for level, lv in enumerate(state["long"])]
        history = np.concatenate([state["items"], items])[-self.max_history:]
        return {"items": history, "long": long, "n": state["n"] + len(items)}

    def recent(self, state: dict) -> np.ndarray:
        return state["items"]

    def interests(self, state: dict) -> dict[str, list[np.ndarray]]:
        short_codes = self.tree.codes[state["items"][-self.short_window:]]  # (w, L)
        short = [np.bincount(short_codes[:, level], minlength=n).astype(float)
                 for level, n in enumerate(self.tree.level_sizes)]
        return {"long": [lv.astype(float) for lv in state["long"]], "short": short}

    def interests_batch(self, histories: Histories) -> dict[str, list[np.ndarray]]:
        lengths = histories.lengths()
        B = len(lengths)
        items = np.asarray(histories.items, dtype=np.int64)
        row = np.repeat(np.arange(B), lengths)
        back = np.repeat(histories.indptr[1:], lengths) - 1 - np.arange(len(items))  # later events of the user
        recent = back < min(self.short_window, self.max_history)  # the state keeps max_history items
        long, short = [], []
        for level, n in enumerate(self.tree.level_sizes):
            cell = row * n + self.tree.codes[items, level]
            long.append(np.bincount(cell, minlength=B * n).reshape(B, n).astype(float))
            short.append(np.bincount(cell[recent], minlength=B * n).reshape(B, n).astype(float))
        return {"long": long, "short": short}

    # -- scoring ----------------------------------------------------------------------------------
    def scores(self, state: dict) -> np.ndarray:
        seq = self._proxy[state["items"]]
        hist = Histories(np.array([0, len(seq)], dtype=np.int64), seq.astype(np.int32))
        base = self.recommender.score(np.zeros(1, dtype=np.int64), hist)[0]  # (n_base,)
        return self._extend(base)

    def query(self, state: dict) -> np.ndarray | None:
        if not self._sequential or len(state["items"]) == 0:
            return None
        import torch

        from arborec.sequential import pad_left

        seq = self._proxy[state["items"]]
        padded = pad_left(np.array([0, len(seq)]), seq, self.recommender.max_len)  # (1, max_len)
        width = int((padded > 0).sum())
        module = self.recommender.module_
        with torch.no_grad():
            last = module(torch.from_numpy(padded[:, -width:]))[:, -1, :]  # (1, D)
        return last[0].float().numpy()

    def item_vectors(self) -> np.ndarray | None:
        return self._item_vectors


class ModelScorer(_BorrowedItems):
    """`OnlineScorer` over a fitted arborec model (``arborec.model.ArboRec``, e.g. from ``load_bundle``).

    The state is the model's own: the recurrent long-term state advanced one event at a time and the
    recent window (``init_state``/``advance``); scores are ``score_state``; interests are the model's
    predicted level distributions (``level_distributions_state``), long and short term. Items added
    later borrow from their text neighbours, as in :class:`HistoryScorer`.
    """

    def __init__(self, model):
        self.model = model
        self.tree = model.tree_
        self._init_borrowed(model.n_items_)
        self._item_vectors = None  # the model's score has a tree term: retrieval ranks the dense scores

    def new_state(self) -> dict:
        return self.model.init_state()

    def update(self, state: dict, items: np.ndarray) -> dict:
        return self.model.advance(state, [int(i) for i in self._proxy[np.asarray(items, dtype=np.int64)]])

    def recent(self, state: dict) -> np.ndarray:
        return np.asarray(state["window"], dtype=np.int64)

    def interests(self, state: dict) -> dict[str, list[np.ndarray]]:
        long, short = self.model.level_distributions_state(state)
        return {"long": [np.asarray(p, dtype=float) for p in long], "short": [np.asarray(p, dtype=float) for p in short]}

    def interests_batch(self, histories: Histories) -> dict[str, list[np.ndarray]]:
        proxied = Histories(np.asarray(histories.indptr, dtype=np.int64),
                            self._proxy[np.asarray(histories.items, dtype=np.int64)].astype(np.int32))
        long, short = self.model.level_distributions(proxied)
        return {"long": [np.asarray(p, dtype=float) for p in long],
                "short": [np.asarray(p, dtype=float) for p in short]}

    def scores(self, state: dict) -> np.ndarray:
        return self._extend(self.model.score_state(state))

    def query(self, state: dict) -> np.ndarray | None:
        return None

    def item_vectors(self) -> np.ndarray | None:
        return None


def _pad(a: np.ndarray, width: int, value) -> np.ndarray:
    if a.shape[1] == width:
        return a
    out = np.full((a.shape[0], width), value, dtype=a.dtype)
    out[:, :a.shape[1]] = a
    return out
