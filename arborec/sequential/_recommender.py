"""`SequentialRecommender`: the training loop (batches, early stopping on validation NDCG@10), sampled softmax, scoring."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from arborec.base import Recommender
from arborec.data import Histories, Split
from arborec.diagnostics import check_param, logger
from arborec.progress import EpochProgress
from arborec.sequential._losses import full_softmax_cross_entropy
from arborec.sequential._resume import load_state, run_key, save_state
from arborec.sequential._windows import batch_order, pad_left, prefix_windows, training_windows


def adam(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """Adam with decoupled weight decay (AdamW, as the published recipes use it; with ``weight_decay=0``, the
    suite's setting, the very same update as Adam, bit for bit), fused into one kernel where torch has one for
    the device (CPU, CUDA): about 6x less time per step than the per-parameter loop on CPU."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=device.type in ("cpu", "cuda"))


class SequentialRecommender(Recommender):
    """Base class of the next-item models trained with full-softmax cross-entropy.

    Subclasses define ``__init__`` (the parameters, stored as given) and :meth:`_build_module`.
    The parameters every subclass has: ``max_len, lr, weight_decay, batch_size, max_epochs,
    patience, eval_every, seed, device, verbose, earlier_windows, sampled_above, n_negatives``
    (catalogues larger than ``sampled_above`` train with ``n_negatives`` shared sampled negatives).

    Attributes after ``fit``
    ------------------------
    module_ : nn.Module, the network with the best validation weights
    n_items_ : int
    history_ : list of dict, one per epoch: epoch, loss, valid_ndcg@10 (None when not evaluated),
        seconds (training only), eval_seconds
    epoch_seconds_ : float, median training seconds per epoch
    best_epoch_ : int, the epoch whose weights were kept (1-based)
    best_valid_ndcg_ : float
    resumed_epochs_ : int, the epochs read back from ``resume_path`` instead of trained (0: none)
    resumed_seconds_ : float, the training and validation seconds those epochs took when they ran
    """

    #: when set, ``fit`` saves its whole state there after every validation (weights, optimiser, best weights,
    #: history, random generators) and, when the file holds the state of the same model, parameters and split,
    #: continues from it: a stopped fit loses at most ``eval_every`` epochs, and ends with the weights an unstopped
    #: one would have. Not a parameter (set it on the instance; the benchmark suite does). The local loop only.
    resume_path: ClassVar[str | Path | None] = None

    def _build_module(self, n_items: int) -> nn.Module:
        raise NotImplementedError

    def _check_params(self) -> None:
        self._check_max_len()
        self._check_batch_size()
        check_param("max_epochs", self.max_epochs, self.max_epochs >= 1, "an integer >= 1")
        check_param("eval_every", self.eval_every, self.eval_every >= 1, "an integer >= 1")
        check_param("patience", self.patience, self.patience >= 1, "an integer >= 1")
        check_param("dropout", self.dropout, 0.0 <= self.dropout < 1.0, "a float in [0, 1)")
        check_param("lr", self.lr, self.lr > 0, "a float > 0")
        check_param("n_negatives", getattr(self, "n_negatives", 1), getattr(self, "n_negatives", 1) >= 1,
                    "an integer >= 1")

    def _check_max_len(self) -> None:
        check_param("max_len", self.max_len, self.max_len >= 1, "an integer >= 1")

    def _check_batch_size(self) -> None:
        check_param("batch_size", self.batch_size, self.batch_size >= 1, "an integer >= 1")

    def _window_length(self) -> int:
        """The training and scoring window: ``max_len`` here; a model that resolves it from the data
        (ArboRec's ``max_len="auto"``) returns its learned value."""
        return self.max_len

    def _step_setting(self) -> tuple[int, float]:
        """(training examples per step, learning rate): ``batch_size`` and ``lr`` here; ArboRec's
        ``batch_size="auto"`` returns what it resolved from the data."""
        return self.batch_size, self.lr

    def fit(self, split: Split, data=None) -> "SequentialRecommender":
        from arborec.evaluate import evaluate  # evaluate imports the data stage only; keep it lazy

        self._check_params()
        device = torch.device(self.device)
        fork = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork):  # seed without touching the caller's RNG
            torch.manual_seed(self.seed)
            rng = np.random.default_rng(self.seed)

            # -- 1. data: every user's training sequence -> (inputs, targets) windows ----------
            inputs, targets = self._training_pairs(split)
            lengths = (inputs > 0).sum(1)
            inputs_t, targets_t = torch.from_numpy(inputs), torch.from_numpy(targets)

            # -- 2. model and optimiser ------------------------------------------------------
            self.n_items_ = split.n_items
            self._prepare_sampling(split)
            self.module_ = self._build_module(split.n_items).to(device)
            batch_size, lr = self._step_setting()
            opt = adam(self.module_.parameters(), lr, self.weight_decay, device)

            self.history_, best_state, bad = [], None, 0
            self.best_epoch_, self.best_valid_ndcg_ = 0, -np.inf
            key = run_key(self, split) if self.resume_path else ""
            first, best_state, bad = self._resume(load_state(self.resume_path, key), opt, rng)
            progress = EpochProgress(self.name, self.max_epochs, self.patience, self.eval_every, echo=self.verbose)
            if self.resumed_epochs_:
                progress.resume(self.best_valid_ndcg_, self.best_epoch_, bad)
            for epoch in range(first, self.max_epochs + 1):
                # -- 3. train one epoch ------------------------------------------------------
                t0 = time.perf_counter()
                self.module_.train()
                total, n_pos = 0.0, 0
                batches = batch_order(lengths, batch_size, rng)
                bar = tqdm(batches, desc=f"{self.name} epoch {epoch}", disable=not self.verbose, leave=False)
                for idx in bar:
                    width = int(lengths[idx].max())  # trim the all-padding columns on the left
                    seq = inputs_t[idx, -width:].to(device)  # (B, W)
                    tgt = targets_t[idx, -width:].to(device)  # (B, W)
                    loss, n = self._loss(seq, tgt)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.item() * n
                    n_pos += n
                    bar.set_postfix(loss=f"{total / n_pos:.4f}", refresh=False)
                seconds = time.perf_counter() - t0
                record = {"epoch": epoch, "loss": total / max(n_pos, 1), "valid_ndcg@10": None,
                          "seconds": seconds, "eval_seconds": 0.0}
                self.history_.append(record)

                # -- 4. validate every eval_every epochs, keep the best weights, stop early ----
                if epoch % self.eval_every and epoch != self.max_epochs:
                    progress.epoch_end(epoch, record["loss"], seconds)
                    continue
                t0 = time.perf_counter()
                ndcg = evaluate(self, split, "valid").metrics["ndcg@10"]
                record["valid_ndcg@10"], record["eval_seconds"] = ndcg, time.perf_counter() - t0
                progress.epoch_end(epoch, record["loss"], seconds + record["eval_seconds"], ndcg)
                improved = ndcg > self.best_valid_ndcg_
                if improved:
                    self.best_epoch_, self.best_valid_ndcg_, bad = epoch, ndcg, 0
                    best_state = copy.deepcopy(self.module_.state_dict())
                else:
                    bad += 1
                self._on_validated(record, improved)
                if self.on_validation is not None:
                    self.on_validation(epoch, ndcg)
                if self.resume_path:
                    save_state(self.resume_path, key, self._training_state(opt, rng, best_state, bad))
                if bad >= self.patience:
                    break

            # -- 5. restore the best epoch's weights -----------------------------------------
            if best_state is not None:
                self.module_.load_state_dict(best_state)
            self.module_.eval()
        self.epoch_seconds_ = float(np.median([r["seconds"] for r in self.history_]))
        logger.info("%s: best valid ndcg@10 %.4f at epoch %d of %d, %.2fs/epoch", self.name,
                    self.best_valid_ndcg_, self.best_epoch_, len(self.history_), self.epoch_seconds_)
        return self

    def _training_state(self, opt, rng: np.random.Generator, best_state: dict | None, bad: int) -> dict:
        """All that the loop's next epoch depends on (the best weights only when they are not the current ones)."""
        latest = self.best_epoch_ == len(self.history_)
        return {"module": self.module_.state_dict(), "optimizer": opt.state_dict(),
                "best_state": None if latest else best_state, "bad": bad,
                "history": json.loads(json.dumps(self.history_, default=float)),  # plain floats (numpy's are not)
                "best_epoch": self.best_epoch_, "best_valid_ndcg": float(self.best_valid_ndcg_),
                "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    def _resume(self, state: dict | None, opt, rng: np.random.Generator) -> tuple[int, dict | None, int]:
        """Put the loop back where ``state`` left it; returns (first epoch to train, best weights, validations
        without improvement). The validations already made are reported to ``on_validation`` again."""
        self.resumed_epochs_, self.resumed_seconds_ = 0, 0.0
        if state is None:
            return 1, None, 0
        self.module_.load_state_dict(state["module"])
        opt.load_state_dict(state["optimizer"])
        self.history_ = list(state["history"])
        self.best_epoch_, self.best_valid_ndcg_ = state["best_epoch"], state["best_valid_ndcg"]
        best_state = state["best_state"] if state["best_state"] is not None else copy.deepcopy(state["module"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.resumed_epochs_ = len(self.history_)
        self.resumed_seconds_ = float(sum(r["seconds"] + r["eval_seconds"] for r in self.history_))
        logger.info("%s: resumed from %s after epoch %d (best valid ndcg@10 %.4f at epoch %d)", self.name,
                    self.resume_path, self.resumed_epochs_, self.best_valid_ndcg_, self.best_epoch_)
        if self.on_validation is not None:
            for r in self.history_:
                if r["valid_ndcg@10"] is not None:
                    self.on_validation(r["epoch"], r["valid_ndcg@10"])
        done = state["bad"] >= self.patience or self.resumed_epochs_ >= self.max_epochs
        return (self.max_epochs + 1 if done else self.resumed_epochs_ + 1), best_state, state["bad"]

    def _training_regime(self) -> str:
        """"every" (every position of a user's window is a target at once) or "prefix" (one example per
        target, holding only the items before it: a model whose positions see the future, or one that trains
        better that way); subclasses say which."""
        return "every"

    def _training_pairs(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets), left-padded (n, max_len) int64: the training data of one epoch, from
        :func:`training_windows` or :func:`prefix_windows` as :meth:`_training_regime` says."""
        make = prefix_windows if self._training_regime() == "prefix" else training_windows
        return make(split.train_indptr, split.train_items, self._window_length(), self.earlier_windows)

    def _output_items(self) -> torch.Tensor:
        """(n_items, D) the tied output layer: row i scores item i (the input embedding, padding row dropped)."""
        return self.module_.item_emb.weight[1:]

    def _last_hidden(self, seq: torch.Tensor) -> torch.Tensor:
        """(B, W) left-padded ids -> (B, D): the state after the last position, which scores the next item."""
        return self.module_(seq)[:, -1, :]

    def _on_validated(self, record: dict, improved: bool) -> None:
        """Hook called after each validation (``improved``: a new best); subclasses write checkpoints here."""

    def _loss(self, seq: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Mean next-item cross-entropy at every non-padding position (see :meth:`_output_loss`)."""
        hidden = self.module_(seq)  # (B, W, D)
        mask = tgt > 0  # (B, W)
        h = hidden[mask]  # (N, D): gather first, so the logits are only (N, n_items)
        items = self._output_items()  # (n_items, D), the tied output layer
        return self._output_loss(h, items, tgt[mask] - 1), int(h.shape[0])

    def _prepare_sampling(self, split: Split) -> None:
        """Item training counts for the sampled softmax's proposal (set before the loop, also on Ray)."""
        self.item_counts_ = split.item_train_counts()
        self._q = None

    def _output_loss(self, h: torch.Tensor, items: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Full-softmax cross-entropy of ``h @ items.T`` (N, n_items); sampled above ``sampled_above`` items."""
        if self._sampled():
            return self._sampled_softmax(h, items, target)
        return full_softmax_cross_entropy(h, items, target)

    def _sampled(self) -> bool:
        """Whether training uses the sampled softmax: the catalogue is larger than ``sampled_above``."""
        return self.n_items_ > getattr(self, "sampled_above", self.n_items_)

    def _draw_negatives(self, device: torch.device) -> torch.Tensor:
        """(n_negatives,) item ids drawn with replacement from the proposal q ~ (training count + 1) ** 0.75."""
        if getattr(self, "_q", None) is None:
            q = (self.item_counts_ + 1.0) ** 0.75
            self._q = torch.as_tensor(q / q.sum(), dtype=torch.float32, device=device)  # (n_items,)
        return torch.multinomial(self._q, self.n_negatives, replacement=True)  # (K,)

    def _sampled_softmax(self, h: torch.Tensor, items: torch.Tensor, target: torch.Tensor,
                         neg: torch.Tensor | None = None, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy against the target and ``n_negatives`` shared negatives drawn by popularity, log-q corrected.

        Only the (N, 1 + n_negatives) logits exist: the cost per step does not grow with the catalogue.
        ``items`` may hold only some items (R, D): then row j is item ``rows[j]``, and ``target`` (N,) and
        ``neg`` (K,) (drawn by the caller) index those rows.
        """
        if neg is None:
            neg = self._draw_negatives(h.device)
        logq = torch.log(self._q) if rows is None else torch.log(self._q)[rows]
        pos = (h * items[target]).sum(-1, keepdim=True) - logq[target, None]  # (N, 1)
        negs = h @ items[neg].T - logq[neg][None, :]  # (N, K)
        negs = negs.masked_fill(neg[None, :] == target[:, None], float("-inf"))  # accidental hits
        logits = torch.cat([pos, negs], dim=1)  # (N, 1 + K)
        return F.cross_entropy(logits, torch.zeros(len(h), dtype=torch.long, device=h.device))

    @torch.no_grad()
    def score(self, users: np.ndarray, histories: Histories, batch_size: int = 1024) -> np.ndarray:
        """(B, n_items) float32: the last position's hidden state . every item embedding."""
        self._check_fitted("module_")
        was_training = self.module_.training
        self.module_.eval()
        device = next(self.module_.parameters()).device
        seqs = pad_left(histories.indptr, histories.items, self._window_length())  # (B, max_len)
        items = self._output_items()  # (n_items, D)
        out = np.empty((len(seqs), self.n_items_), dtype=np.float32)
        for start in range(0, len(seqs), batch_size):
            seq = seqs[start:start + batch_size]
            width = max(int((seq > 0).sum(1).max()), 1)
            seq = torch.from_numpy(seq[:, -width:]).to(device)  # (b, W)
            last = self._last_hidden(seq)  # (b, D)
            out[start:start + len(seq)] = (last @ items.T).float().cpu().numpy()
        self.module_.train(was_training)
        return out
