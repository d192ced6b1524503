"""`ArboRec`: the hierarchical long/short-term user-interest recommender (parameters, fit, score, profiles).

Its text-score side lives in ``_text_score`` and its per-event serving state in ``_state``."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from arborec.data import Histories, Split
from arborec.diagnostics import ConfigError, check_param, logger
from arborec.hierarchy import InterestTree
from arborec.model._network import ArboRecConfig, ArboRecModule
from arborec.model._state import EventState
from arborec.model._text_score import POINTER_TEMPERATURE, TextScoring
from arborec.sequential import SequentialRecommender, pad_left



class ArboRec(TextScoring, EventState, SequentialRecommender):
    """Two-scale, text-grounded sequential recommender whose user states are read as interests over a tree.

    An item is a gated mix of its ID embedding and a learned projection of its (frozen) language-model
    vector (on a catalogue without text: its ID embedding and the sum of its tree-path nodes' embeddings).
    A user is a GRU over the whole history (long-term) and causal self-attention over the last
    ``max_len_`` events (short-term), fused by a learned gate per step. The item score is
    ``user . item + text_weight * cos(recency-weighted mean of the window's text vectors, item's text vector)``.

    Beyond that item part (text-less catalogues only), the interest tree does not rank: level heads
    read, at every tree level, the distribution of the next event's node from the long- and short-term
    states, trained on those states without shaping them (gradients stop at the heads). They give the
    interest profiles, the explanations, the slate policy's action space and the service's segments.
    (With the tree in the ranking path of a catalogue with text, as tree-node embeddings in the item
    table and a score term, the suite measured a tie on ml-100k and Beauty, 3 seeds each:
    ``benchmarks/results/tree_in_ranking.md``.)

    A text pointer then mixes that score with a second next-item distribution, read from text alone: with
    ``pointer_weight`` w and the temperature T = ``POINTER_TEMPERATURE`` the final score is the log-probability
    ``log((1 - w) softmax(score) + w softmax(cos / T))``, the second softmax over the items outside
    the user's window. Items whose text is closest to the user's recent text interest but which the
    ID-trained score ranks low (typically rare, "cold" items) can so reach the top of the list.

    Defaults that fit the data (:func:`arborec.model._defaults.resolve_defaults`, logged in one line
    at INFO and kept in ``defaults_``): with ``max_len="auto"`` the window is the smallest of 50, 100
    and 200 that holds 90% of the training histories whole; with ``regime="auto"`` short histories
    train on one prefix per target and long ones on every position of a window at once (the cost rule
    of :func:`arborec.model._defaults.prefix_cost`), 512 prefixes or 128 windows per step with
    ``batch_size="auto"``; a catalogue without item text (or with item vectors
    that are all alike) trains without the text part of the item table, the text term and the text
    pointer, and its tree comes from the catalogue's category/attribute paths (its path nodes then enter
    the item table), or is skipped (no level heads) when there are none.

    Parameters
    ----------
    hidden_size, n_layers, n_heads, gru_layers : width, attention blocks, heads, GRU layers
    max_len : int, or "auto" (default): the short-term window and the training window (see above)
    regime : "auto" (default, see above), "prefix" (one training example per target, holding only the
        items before it; the loss reads its last position) or "every" (every position of a user's window
        is a target at once: cheaper on long histories)
    id_dropout : share of items whose ID embedding is hidden at each training step (learn to do without it)
    batch_size : int, or "auto" (default): training examples per step, 512 prefixes or 128 windows by regime,
        with ``lr`` (stated for 128 examples) scaled by sqrt(batch / 128): 2x for 512 prefixes
    dropout, lr, weight_decay, max_epochs, patience, eval_every, earlier_windows :
        as in :class:`arborec.baselines.SASRec`
    text_weight : float, or "auto" to pick it after training among ``TEXT_WEIGHTS`` on validation
    pointer_weight : float in [0, 1), or "auto" to pick it among ``POINTER_WEIGHTS`` on validation
        (after text_weight); 0 turns the text pointer off
    cold_tiebreak : when choosing the pointer on validation, among the candidates whose NDCG@10 is within
        one standard error of the best (validation cannot tell them apart), take the one with the best
        Recall@10 on cold-item targets (<= 5 training events; needs ``COLD_TIEBREAK_MIN_USERS`` of them);
        False: the best validation NDCG@10
    use_text, use_long, use_short, use_heads : the ablation switches (use_heads=False: no tree at all, so no
        level heads, no interest profiles and no path nodes in the item table)
    tree_source : which tree ``fit`` builds when none is given (see :func:`arborec.model.default_tree`)
    text_model : sentence-transformers model of the item vectors (when ``fit`` gets none)
    text_backend : how ``fit`` encodes them (:class:`arborec.text.TextEncoder`'s backend): "auto" (default,
        the fastest exact path measured on this CPU) or "static" (a model2vec model distilled from
        ``text_model``: thousands of items per second, at the cost in NDCG@10 the suite measures as
        ``arborec-static-text``)
    sampled_above : catalogues larger than this train with sampled softmax (log-q corrected)
    n_negatives : shared negatives per batch for the sampled softmax
    checkpoint_dir : if set, the best weights, the history and a loss/metric plot are written there
    seed, device, verbose

    Attributes after ``fit``
    ------------------------
    module_, n_items_, history_, epoch_seconds_, best_epoch_, best_valid_ndcg_ (see the base class)
    max_len_ : int, the window used; regime_ : str, the training regime used; batch_size_ : int, examples per
    training step; lr_ : float, the learning rate used; has_text_ : bool, whether
    text is used (item table, text term, pointer); has_tree_ : bool, whether the tree is built (level heads,
    profiles); tree_in_items_ : bool, whether its path nodes are in the item table; defaults_ : str,
    the log line saying what was chosen and why
    tree_ : InterestTree (one node holding every item when the tree is skipped),
    vectors_ : (n_items, d) float32, text_weight_,
    pointer_weight_, pointer_temperature_ : float, score_weight_scores_ / pointer_scores_ :
    {setting: valid NDCG@10} of the candidates (when chosen on validation)
    """

    name = "arborec"
    search_space = {"lr": [1e-3, 2e-3], "dropout": [0.3, 0.4, 0.5]}

    def __init__(self, hidden_size: int = 64, n_layers: int = 2, n_heads: int = 1, gru_layers: int = 1,
                 max_len: int | str = "auto", regime: str = "auto", dropout: float = 0.4, id_dropout: float = 0.0,
                 lr: float = 1e-3, weight_decay: float = 0.0,
                 batch_size: int | str = "auto", max_epochs: int = 200, patience: int = 3, eval_every: int = 2,
                 earlier_windows: bool = False, text_weight="auto",
                 pointer_weight="auto", cold_tiebreak: bool = True,
                 use_text: bool = True, use_long: bool = True, use_short: bool = True,
                 use_heads: bool = True, tree_source: str = "auto", text_model: str = "all-MiniLM-L6-v2",
                 text_backend: str = "auto",
                 sampled_above: int = 100_000, n_negatives: int = 2048, checkpoint_dir: str | None = None,
                 seed: int = 0, device: str = "cpu", verbose: bool = False):
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.gru_layers = gru_layers
        self.max_len = max_len
        self.regime = regime
        self.dropout = dropout
        self.id_dropout = id_dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.eval_every = eval_every
        self.earlier_windows = earlier_windows
        self.text_weight = text_weight
        self.pointer_weight = pointer_weight
        self.cold_tiebreak = cold_tiebreak
        self.use_text = use_text
        self.use_long = use_long
        self.use_short = use_short
        self.use_heads = use_heads
        self.tree_source = tree_source
        self.text_model = text_model
        self.text_backend = text_backend
        self.sampled_above = sampled_above
        self.n_negatives = n_negatives
        self.checkpoint_dir = checkpoint_dir
        self.seed = seed
        self.device = device
        self.verbose = verbose

    # -- fitting -----------------------------------------------------------------------------
    def _check_max_len(self) -> None:
        _check_auto_or_count("max_len", self.max_len)

    def _check_batch_size(self) -> None:
        _check_auto_or_count("batch_size", self.batch_size)

    def _window_length(self) -> int:
        return self.max_len_

    def _step_setting(self) -> tuple[int, float]:
        return self.batch_size_, self.lr_

    def _check_params(self) -> None:
        super()._check_params()
        check_param("use_long/use_short", (self.use_long, self.use_short), self.use_long or self.use_short,
                    "at least one stream on")
        check_param("regime", self.regime, self.regime in ("auto", "prefix", "every"), '"auto", "prefix" or "every"')
        check_param("id_dropout", self.id_dropout, 0 <= self.id_dropout < 1, "a float in [0, 1)")
        t = self.text_weight
        check_param("text_weight", t, t == "auto" or (isinstance(t, (int, float)) and t >= 0), '"auto" or a float >= 0')
        w = self.pointer_weight
        check_param("pointer_weight", w, w == "auto" or (isinstance(w, (int, float)) and 0 <= w < 1),
                    '"auto" or a float in [0, 1)')

    def fit(self, split: Split, data=None, *, vectors: np.ndarray | None = None,
            tree: InterestTree | None = None) -> "ArboRec":
        """Train on ``split``. Item vectors and the tree come from the arguments, else from ``data``."""
        self._setup_fit(split, data, vectors=vectors, tree=tree)
        super().fit(split, data)
        return self._finish_fit(split)

    def _setup_fit(self, split: Split, data=None, *, vectors: np.ndarray | None = None,
                   tree: InterestTree | None = None) -> None:
        """What training needs besides the loop (item vectors, tree, counts); also used by
        :func:`arborec.scale.fit_ray`, which runs the loop on Ray Train."""
        from arborec.model._defaults import resolve_defaults

        self._check_params()
        if vectors is None:
            if data is None:
                raise ConfigError("ArboRec.fit needs item vectors: pass vectors=... or the prepared data")
            from arborec.text import TextEncoder, encode_items

            vectors = encode_items(data.catalog, TextEncoder(self.text_model, backend=self.text_backend))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) != split.n_items:
            raise ConfigError(f"vectors has {len(vectors)} rows, expected one per item ({split.n_items})")
        if tree is not None and tree.n_items != split.n_items:
            raise ConfigError(f"tree covers {tree.n_items} items, expected {split.n_items}")
        chosen = resolve_defaults(split, data, vectors, max_len=self.max_len, regime=self.regime,
                                  batch_size=self.batch_size, tree=tree, tree_source=self.tree_source, seed=self.seed,
                                  heads=self.use_heads)
        self.max_len_, self.regime_, self.batch_size_ = chosen.max_len, chosen.regime, chosen.batch_size
        self.lr_ = self.lr * chosen.lr_scale
        self.has_text_, self.has_tree_, self.tree_in_items_ = chosen.has_text, chosen.has_tree, chosen.tree_in_items
        self.defaults_ = chosen.describe()
        logger.info(self.defaults_)
        self.vectors_, self.tree_ = vectors, chosen.tree
        self._prepare_sampling(split)
        self._set_score_knobs()

    def _set_score_knobs(self) -> None:
        """The text weight and the pointer as given ("auto": off until chosen after training). Training never
        reads them except through validation scores, where an "auto" knob is off."""
        text_on = self.has_text_  # without text, the text term and the pointer are off whatever was asked
        self.text_weight_ = float(self.text_weight) if text_on and self.text_weight != "auto" else 0.0
        self.pointer_weight_ = float(self.pointer_weight) if text_on and self.pointer_weight != "auto" else 0.0
        self.pointer_temperature_ = POINTER_TEMPERATURE

    def _finish_fit(self, split: Split) -> "ArboRec":
        """After the loop: the text weight, then the text pointer, chosen on validation; the final checkpoint."""
        if self.text_weight == "auto" and self.has_text_:
            self._select_text_weight(split)
        if self.pointer_weight == "auto" and self.has_text_:
            self._select_pointer(split)
        if self.checkpoint_dir:
            self._write_checkpoint(final=True)
        return self

    def with_score_knobs(self, split: Split, **knobs) -> "ArboRec":
        """A copy of this fitted model with ``text_weight`` / ``pointer_weight`` set
        to ``knobs`` and the remaining "auto" ones chosen again on validation. The network is shared: it is
        the one a fit with these knobs trains, since training does not read them (the suite reads its
        ``arborec-no-pointer`` ablation this way instead of training the same network again)."""
        self._check_fitted("module_")
        other = copy.copy(self).set_params(checkpoint_dir=None, **knobs)
        other._check_params()
        other._set_score_knobs()
        return other._finish_fit(split)

    def _build_module(self, n_items: int) -> ArboRecModule:
        cfg = self.config_ = ArboRecConfig(
            n_items=n_items, level_sizes=self.tree_.level_sizes, text_dim=self.vectors_.shape[1],
            max_len=self.max_len_, hidden_size=self.hidden_size, n_layers=self.n_layers, n_heads=self.n_heads,
            gru_layers=self.gru_layers, dropout=self.dropout, id_dropout=self.id_dropout,
            use_text=self.use_text and self.has_text_, use_tree=self.tree_in_items_,
            use_long=self.use_long, use_short=self.use_short, use_heads=self.use_heads and self.has_tree_)
        return _module_from(cfg, self.vectors_, self.tree_, self.item_counts_ >= 1)

    def _training_regime(self) -> str:
        return self.regime_  # resolved from the data in _setup_fit

    def _loss(self, seq: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Next-item cross-entropy at every target position + the level heads' cross-entropy on the user states,
        which reaches the heads only (the states are detached: the tree does not shape the ranking)."""
        mask = tgt > 0  # (B, W)
        target = tgt[mask] - 1  # (N,)
        if self._sampled():  # only the rows this step touches: inputs, targets, negatives
            neg = self._draw_negatives(seq.device)  # (K,)
            zero = seq.new_zeros(1)
            rows, local = torch.unique(torch.cat([zero, seq.flatten(), target + 1, neg + 1]), return_inverse=True)
            table = torch.cat([self.module_.items.vectors.new_zeros(1, self.hidden_size),
                               self.module_.items(rows[1:] - 1)])  # (R + 1, D), row 0 = padding
            n_seq = seq.numel()
            user, long, short, _ = self.module_(local[1:1 + n_seq].view_as(seq), table)
            h = user[mask]  # (N, D)
            loss = self._sampled_softmax(h, table[1:], local[1 + n_seq:1 + n_seq + len(target)] - 1,
                                         neg=local[1 + n_seq + len(target):] - 1, rows=rows[1:] - 1)
        else:
            user, long, short, table = self.module_(seq)  # (B, W, D) x3, (n_items + 1, D)
            h = user[mask]  # (N, D)
            loss = self._output_loss(h, table[1:], target)  # full softmax over the catalogue
        heads = self.module_.heads
        if heads is not None:
            codes = self.module_.items.codes[target]  # (N, L)
            reps = [r[mask].detach() for r in (user, long, short) if r is not None]  # the fused user, each stream
            head_loss = sum(sum(heads.nll(r, codes)) for r in reps)
            loss = loss + head_loss / (len(reps) * len(heads.level_sizes))
        return loss, int(h.shape[0])

    def _on_validated(self, record: dict, improved: bool) -> None:
        if self.checkpoint_dir and improved:
            self._write_checkpoint(final=False)

    def _write_checkpoint(self, final: bool) -> None:
        from safetensors.torch import save_file

        from arborec.model._plot import plot_history

        out = Path(self.checkpoint_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()},
                  str(out / "best.safetensors"))
        (out / "history.json").write_text(json.dumps(self.history_, indent=1) + "\n")
        if final:
            plot_history(self.history_, out / "training.png", title=f"{self.name}")

    # -- scoring -----------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.module_.parameters()).device

    @torch.no_grad()
    def _last_states(self, histories: Histories, table: torch.Tensor):
        """(user, long, short) at the last event of each history: (B, D) tensors (None for an off stream).

        The long stream reads the whole history; the short stream its last ``max_len_`` events.
        """
        m, device = self.module_, self._device()
        lengths = histories.lengths()
        long = short = None
        if m.cfg.use_long:
            seq = torch.from_numpy(pad_left(histories.indptr, histories.items, max(int(lengths.max()), 1))).to(device)
            long = m.long_repr(m.long_stream(seq, table)[:, -1])  # (B, D)
        if m.cfg.use_short:
            seq = pad_left(histories.indptr, histories.items, self.max_len_)
            width = max(int((seq > 0).sum(1).max()), 1)
            short = m.short_stream(torch.from_numpy(seq[:, -width:]).to(device), table)[:, -1]  # (B, D)
        return m.fuse_streams(long, short), long, short

    @torch.no_grad()
    def _score_parts(self, histories: Histories, batch_size: int = 1024,
                     with_text: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(match, text), each (B, n_items): user . item, and the cosine of the item's text vector with the
        user's recency-weighted window text vector (None when ``with_text`` is False)."""
        self._check_fitted("module_")
        m = self.module_
        was_training = m.training
        m.eval()
        table = m.items()  # (n_items + 1, D)
        match = np.empty((len(histories), self.n_items_), dtype=np.float32)
        text = np.empty_like(match) if with_text else None
        for start in range(0, len(histories), batch_size):
            stop = min(start + batch_size, len(histories))
            ptr = histories.indptr[start:stop + 1]
            part = Histories(ptr - ptr[0], histories.items[ptr[0]:ptr[-1]])
            user, _, _ = self._last_states(part, table)
            match[start:stop] = (user @ table[1:].T).cpu().numpy()
            if with_text:
                text[start:stop] = self._text_term(part)
        m.train(was_training)
        return match, text

    def score(self, users: np.ndarray, histories: Histories, batch_size: int = 1024) -> np.ndarray:
        """(B, n_items) float32: user . item + text_weight_ * text term, mixed with the text pointer when
        ``pointer_weight_`` > 0 (then log-probabilities of the next item)."""
        self._check_fitted("module_")
        match, text = self._score_parts(histories, batch_size, with_text=self._uses_text())
        return self._final_scores(match, text, histories)

    # -- interest profiles -------------------------------------------------------------------
    @torch.no_grad()
    def level_distributions(self, histories: Histories) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Each user's predicted interest distribution at every tree level, long- and short-term.

        Returns ``(long, short)``: two lists of L float32 arrays (B, n_nodes_l), coarse to fine, rows
        summing to 1. ``long`` is the level heads applied to the recurrent stream's state after the
        whole history, ``short`` the same heads applied to the attention stream's state over the last
        ``max_len_`` events; both are trained to predict the node of the next event. When a stream is
        switched off its list is the fused user's distributions. When the tree was skipped (no item
        text, no category paths) every user's one level is the single node holding every item.
        """
        self._check_fitted("module_")
        if not self.has_tree_:  # no tree: every interest sits in the one node holding every item
            ones = [np.ones((len(histories), 1), dtype=np.float32)]
            return ones, list(ones)
        if self.module_.heads is None:
            raise ConfigError("level_distributions needs the level heads: this model was fitted with use_heads=False")
        m = self.module_
        was_training = m.training
        m.eval()
        user, long, short = self._last_states(histories, m.items())
        out = tuple([p.exp().cpu().numpy() for p in m.heads(user if r is None else r)] for r in (long, short))
        m.train(was_training)
        return out

    def config_dict(self) -> dict:
        """The parameters and the network configuration, JSON-able (what a bundle stores)."""
        return {"params": {k: v for k, v in self.get_params().items() if k != "verbose"},
                "network": asdict(self.config_), "text_weight_": self.text_weight_, "pointer_weight_": self.pointer_weight_,
                "pointer_temperature_": self.pointer_temperature_, "n_items": self.n_items_,
                "max_len_": self.max_len_, "regime_": self.regime_, "has_text_": self.has_text_, "has_tree_": self.has_tree_,
                "defaults_": self.defaults_}


def _check_auto_or_count(name: str, value) -> None:
    """A size that ``fit`` resolves from the data ("auto") or is given as an integer >= 1."""
    check_param(name, value, value == "auto" or (isinstance(value, (int, np.integer)) and value >= 1),
                '"auto" or an integer >= 1')


def _module_from(cfg: ArboRecConfig, vectors: np.ndarray, tree: InterestTree, seen: np.ndarray) -> ArboRecModule:
    import warnings

    with warnings.catch_warnings():  # read-only memory-mapped vectors: shared, never written (a frozen buffer)
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        text = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
    return ArboRecModule(cfg, text, torch.from_numpy(tree.codes), torch.from_numpy(np.asarray(seen, dtype=bool)),
                         [torch.from_numpy(p) for p in tree.parents])
