"""The text side of arborec's score: the text-interest term and the text pointer, weights chosen on validation."""

from __future__ import annotations

import math

import numpy as np
import torch

from arborec.data import Histories, Split
from arborec.diagnostics import logger

TEXT_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)  # candidates for text_weight="auto", chosen on validation NDCG@10
TEXT_DECAY = 0.7  # recency decay of the text-interest term (weight of the k-th most recent window item: 0.7 ** k)
POINTER_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)  # candidates for pointer_weight="auto"
#: the text pointer's softmax temperature. It was a knob chosen on validation among 0.01, 0.02 and 0.03; over the
#: suite's six fits with text (ml-100k and Beauty, 3 seeds each) 0.03 was chosen five times and fixing it cost at
#: most 0.0001 of validation NDCG@10 (benchmarks/notes/pointer_temperature.md), so it is a constant
POINTER_TEMPERATURE = 0.03
COLD_TIEBREAK_MIN_USERS = 100  # cold_tiebreak needs this many validation users with a cold target


class TextScoring:
    """What :class:`arborec.model.ArboRec` adds to ``user . item`` from the item text (a mixin).

    Needs of its host: ``vectors_``, ``max_len_``, ``text_weight_``, ``pointer_weight_``,
    ``pointer_temperature_``, the parameters ``text_weight``, ``pointer_weight``,
    ``cold_tiebreak``, ``name``, and ``_score_parts(histories, with_text=...)``.
    """

    def _validation_blocks(self, split: Split, with_text: bool):
        """The validation users in blocks of :func:`users_per_chunk` (bounded memory on big catalogues).

        Yields ``(histories, parts, rank)`` per block: ``parts`` the (match, text) of
        :meth:`_score_parts` and ``rank(scores)`` the 0-based ranks of the block's targets in a
        (B, n_items) score array, its history items excluded (in place)."""
        from arborec.evaluate._metrics import target_ranks
        from arborec.evaluate._protocol import users_per_chunk

        users = split.eval_users("valid")
        targets = split.targets("valid", users)
        chunk = users_per_chunk(split.n_items)
        for start in range(0, len(users), chunk):
            hist = split.histories("valid", users[start:start + chunk])
            rows = np.repeat(np.arange(len(hist)), hist.lengths())

            def rank(scores: np.ndarray, hist=hist, rows=rows, block=targets[start:start + chunk]) -> np.ndarray:
                scores[rows, hist.items] = -np.inf
                return target_ranks(scores, block)

            parts = self._score_parts(hist, with_text=with_text)
            yield hist, parts, rank

    @torch.no_grad()
    def _select_text_weight(self, split: Split) -> None:
        """Pick text_weight_ among ``TEXT_WEIGHTS`` on validation NDCG@10, from one scoring pass."""
        from arborec.evaluate._metrics import rank_metrics

        ranks = {t: [] for t in TEXT_WEIGHTS}
        for _, (match, text), rank in self._validation_blocks(split, with_text=True):
            for t in ranks:
                ranks[t].append(rank(_combine(match.copy(), text, t)))
        scores = {t: rank_metrics(np.concatenate(r), (10,))["ndcg@10"] for t, r in ranks.items()}
        self.text_weight_ = float(max(scores, key=scores.get))
        self.score_weight_scores_ = {f"text {t}": v for t, v in scores.items()}
        logger.info("%s: text_weight %.2f (valid ndcg@10 %.4f; without: %.4f)", self.name, self.text_weight_,
                    max(scores.values()), scores.get(0.0, float("nan")))

    @torch.no_grad()
    def _select_pointer(self, split: Split) -> None:
        """Pick pointer_weight_ ("auto") on validation, the score weights fixed.

        Every candidate's per-user NDCG@10 comes from one scoring pass; the choice is the best mean, or
        with ``cold_tiebreak`` the best cold-item Recall@10 within one standard error of it
        (:func:`arborec.evaluate.select_within_one_se`)."""
        from arborec.evaluate import select_within_one_se
        from arborec.evaluate._protocol import COLD_ITEM_MAX_TRAIN

        weights = POINTER_WEIGHTS if self.pointer_weight == "auto" else (self.pointer_weight_,)
        ranks = {w: [] for w in weights}
        for hist, (match, text), rank in self._validation_blocks(split, with_text=True):
            base = _combine(match, text, self.text_weight_)
            window, base_logp, pointer = self._pointer_parts(base, text, hist)
            for w in weights:
                ranks[w].append(rank(_mix(base_logp, pointer, w, window) if w else base.copy()))
        ranks = {w: np.concatenate(r) for w, r in ranks.items()}
        ndcg = {w: np.where(r < 10, 1.0 / np.log2(r + 2.0), 0.0) for w, r in ranks.items()}
        cold = split.item_train_counts()[split.targets("valid", split.eval_users("valid"))] <= COLD_ITEM_MAX_TRAIN
        prefer = ({w: float((r[cold] < 10).mean()) for w, r in ranks.items()}
                  if self.cold_tiebreak and cold.sum() >= COLD_TIEBREAK_MIN_USERS else None)
        self.pointer_weight_ = float(select_within_one_se(ndcg, prefer))
        label = f"temperature {self.pointer_temperature_}"  # the key names of the records (and of earlier ones)
        self.pointer_scores_ = {f"pointer {w}, {label}": float(v.mean()) for w, v in ndcg.items()}
        if prefer:
            self.pointer_cold_recall_ = {f"pointer {w}, {label}": v for w, v in prefer.items()}
        logger.info("%s: pointer_weight %.2f (valid ndcg@10 %.4f; without: %.4f)", self.name, self.pointer_weight_,
                    ndcg[self.pointer_weight_].mean(), ndcg[0.0].mean() if 0.0 in ndcg else float("nan"))

    def _window(self, histories: Histories) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The events of each user's window (the last ``max_len_``): (rows, items, age), age 0 = most recent."""
        lengths = histories.lengths()
        age = np.repeat(histories.indptr[1:], lengths) - 1 - np.arange(len(histories.items))
        keep = age < self.max_len_
        return np.repeat(np.arange(len(lengths)), lengths)[keep], histories.items[keep], age[keep]

    def _text_term(self, histories: Histories) -> np.ndarray:
        """(B, n_items) cosine between each item's text vector and the user's text interest: the mean of
        the window's item vectors, the k-th most recent weighted ``TEXT_DECAY ** k``."""
        rows, items, age = self._window(histories)
        profile = np.zeros((len(histories), self.vectors_.shape[1]), dtype=np.float32)
        np.add.at(profile, rows, (TEXT_DECAY ** age).astype(np.float32)[:, None] * self.vectors_[items])
        profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-12)
        return profile @ self._unit_vectors().T

    def _pointer_parts(self, scores: np.ndarray, text: np.ndarray, histories: Histories):
        """What the text pointer mixes, over the items outside each user's window (a window item is never
        the next new item): ``(window, base, pointer)``, the window as (rows, items) index tensors,
        ``base`` the log-softmax of ``scores`` and ``pointer`` that of ``text / pointer_temperature_``, each
        (B, n_items) with -inf at the window items."""
        rows, items, _ = self._window(histories)
        window = torch.from_numpy(rows), torch.from_numpy(items.astype(np.int64))

        def log_softmax_outside(logits: torch.Tensor) -> torch.Tensor:
            logits[window] = -torch.inf
            return torch.log_softmax(logits, dim=1)

        return (window, log_softmax_outside(torch.from_numpy(scores).clone()),
                log_softmax_outside(torch.from_numpy(text) / self.pointer_temperature_))

    def _uses_text(self) -> bool:
        """Whether scoring reads the text term (a text weight or a text pointer)."""
        return bool(self.text_weight_ or self.pointer_weight_)

    def _final_scores(self, match: np.ndarray, text: np.ndarray | None, histories: Histories) -> np.ndarray:
        """(B, n_items): ``match`` + the text term, mixed with the text pointer (``pointer_weight_``,
        ``pointer_temperature_``) when it is on."""
        scores = _combine(match, text, self.text_weight_)
        if not self.pointer_weight_:
            return scores
        window, base, pointer = self._pointer_parts(scores, text, histories)
        return _mix(base, pointer, self.pointer_weight_, window)

    def _unit_vectors(self) -> np.ndarray:
        cache = getattr(self, "_unit_cache", None)
        if cache is None or cache[0] is not self.vectors_:
            v = np.asarray(self.vectors_, dtype=np.float32)
            cache = (self.vectors_, v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12))
            self._unit_cache = cache
        return cache[1]


def _combine(match: np.ndarray, text: np.ndarray | None, text_weight: float) -> np.ndarray:
    """match + text_weight * text, in place in ``match`` (skipped when text is None or weighted 0)."""
    if text is not None and text_weight:
        match += np.float32(text_weight) * text
    return match


def _mix(base: torch.Tensor, pointer: torch.Tensor, weight: float, window) -> np.ndarray:
    """(B, n_items) float32 log((1 - weight) exp(base) + weight exp(pointer)) from two (B, n_items)
    log-distributions over the items outside the window; the window items get each row's lowest score
    (finite, so that scores can still be averaged, and ranked last)."""
    out = torch.logaddexp(base + math.log1p(-weight), pointer + math.log(weight))
    out[window] = torch.where(torch.isfinite(out), out, torch.inf).amin(dim=1)[window[0]]
    return out.numpy()
