"""Per-event user state (what the service keeps): advance a user one event at a time, score, profile and explain."""

from __future__ import annotations

import numpy as np
import torch

from arborec.data import Histories
from arborec.diagnostics import ConfigError


class EventState:
    """The serving contract of :class:`arborec.model.ArboRec` (a mixin): a JSON-able state per user that
    equals re-reading the whole history, and what is read from it."""

    def init_state(self) -> dict:
        """A user with no events: zero recurrent state, empty window."""
        self._check_fitted("module_")
        return {"gru": np.zeros((self.gru_layers, self.hidden_size), dtype=np.float32).tolist(), "window": [],
                "n_events": 0}

    @torch.no_grad()
    def advance(self, state: dict, items: list[int]) -> dict:
        """A new state: the GRU advanced by ``items`` (0-based item indices, oldest first), the window extended.

        Equals running the long stream over the whole history again, without doing so.
        """
        self._check_fitted("module_")
        items = [int(i) for i in items]
        if any(i < 0 or i >= self.n_items_ for i in items):
            raise ConfigError(f"items must be item indices in [0, {self.n_items_}), got {items}")
        gru = np.asarray(state["gru"], dtype=np.float32)
        if items and self.use_long:
            m = self.module_
            was_training = m.training
            m.eval()
            seq = torch.as_tensor([[i + 1 for i in items]], device=self._device())  # (1, k)
            h0 = torch.from_numpy(gru).to(self._device())[:, None, :]  # (layers, 1, D)
            _, h = m.gru(m.gru_inputs(seq, self._table()), h0)  # (layers, 1, D)
            gru = h[:, 0, :].cpu().numpy()
            m.train(was_training)
        window = (list(state["window"]) + items)[-self.max_len_:]
        return {"gru": gru.tolist(), "window": window, "n_events": int(state.get("n_events", 0)) + len(items)}

    def _table(self) -> torch.Tensor:
        """The fused item table in eval mode, cached until the weights change (fit/load)."""
        cache = getattr(self, "_table_cache", None)
        if cache is None or cache[0] is not self.module_:
            with torch.no_grad():
                was_training = self.module_.training
                self.module_.eval()
                cache = (self.module_, self.module_.items())
                self.module_.train(was_training)
            self._table_cache = cache
        return cache[1]

    @torch.no_grad()
    def _state_user(self, state: dict):
        m = self.module_
        m.eval()
        table = self._table()
        long = short = None
        if m.cfg.use_long:
            gru = torch.as_tensor(np.asarray(state["gru"], dtype=np.float32), device=self._device())
            long = m.long_repr(gru[-1:])  # (1, D): the top layer's output after the last event
        if m.cfg.use_short:
            window = [i + 1 for i in state["window"]] or [0]
            short = m.short_stream(torch.as_tensor([window], device=self._device()), table)[:, -1]  # (1, D)
        return m.fuse_streams(long, short), long, short, table

    @torch.no_grad()
    def score_state(self, state: dict) -> np.ndarray:
        """(n_items,) float32 scores of the next item for a user state (same as :meth:`score`)."""
        self._check_fitted("module_")
        user, _, _, table = self._state_user(state)
        s = (user @ table[1:].T).cpu().numpy().astype(np.float32)  # (1, n_items)
        if not self._uses_text():
            return s[0]
        window = Histories(np.array([0, len(state["window"])]), np.asarray(state["window"], dtype=np.int64))
        return self._final_scores(s, self._text_term(window), window)[0]

    @torch.no_grad()
    def level_distributions_state(self, state: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(long, short) level distributions of one user state, as in :meth:`level_distributions` (1-D arrays)."""
        self._check_fitted("module_")
        if not self.has_tree_:  # as in level_distributions: the one node of a skipped tree
            return [np.ones(1, dtype=np.float32)], [np.ones(1, dtype=np.float32)]
        if self.module_.heads is None:
            raise ConfigError("level_distributions_state needs the level heads (use_heads=True)")
        user, long, short, _ = self._state_user(state)
        return tuple([p[0].exp().cpu().numpy() for p in self.module_.heads(user if r is None else r)]
                     for r in (long, short))

    # -- explanation -------------------------------------------------------------------------
    def explain(self, state_or_long: dict, items: list[int]) -> list[dict]:
        """For each recommended item: its path labels and the user's probability of each path node."""
        long, short = self.level_distributions_state(state_or_long)
        out = []
        for item in items:
            path = self.tree_.path(item)
            labels = self.tree_.path_labels(item)
            out.append({"item": int(item), "path": labels,
                        "long": [float(long[lv][n]) for lv, n in enumerate(path)],
                        "short": [float(short[lv][n]) for lv, n in enumerate(path)]})
        return out
