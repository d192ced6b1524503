"""One progress line per training epoch (loss, validation, best so far, speed, ETA), logged on the `arborec` logger."""

from __future__ import annotations

import logging
import sys
import time

from arborec.diagnostics import logger


def _duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class EpochProgress:
    """Logs (INFO, so the CLI shows it and ``-q`` hides it) one line per epoch of a training loop.

    ``sasrec epoch 3/200  loss 7.1234  valid ndcg@10 0.0512  best 0.0530 @2  4.1 s/epoch  eta 25s (if no new best) to 13m30s (max_epochs)``

    The ETA is a range: the low end is when early stopping would end the run if validation does not
    improve again (``patience`` checks, one every ``eval_every`` epochs), the high end is ``max_epochs``.
    Loops without early stopping (``patience=None``) give one figure. Lines closer together than
    ``min_interval`` seconds are skipped (the last epoch and validated epochs always show), so fast
    loops such as ALS iterations do not flood the log. With ``echo`` (a model's ``verbose=True``) the
    line is also written to stderr when no logging is configured to show it.
    """

    def __init__(self, name: str, max_epochs: int, patience: int | None = None, eval_every: int = 1,
                 unit: str = "epoch", min_interval: float = 0.0, echo: bool = False):
        self.echo = echo
        self.name, self.max_epochs, self.patience, self.eval_every = name, max_epochs, patience, eval_every
        self.unit, self.min_interval = unit, min_interval
        self.best, self.best_epoch, self.bad = None, 0, 0
        self._seconds: list[float] = []
        self._last_line = -float("inf")

    def resume(self, best: float, best_epoch: int, bad: int) -> None:
        """Continue from a stopped loop's best validation figure, its epoch and the validations since it."""
        self.best, self.best_epoch, self.bad = best, best_epoch, bad

    def epoch_end(self, epoch: int, loss: float | None, seconds: float, valid: float | None = None) -> str | None:
        """Record epoch ``epoch`` (1-based; ``seconds``: its training and validation time); log and return its line."""
        self._seconds.append(seconds)
        if valid is not None:
            if self.best is None or valid > self.best:
                self.best, self.best_epoch, self.bad = valid, epoch, 0
            else:
                self.bad += 1
        now = time.monotonic()
        if valid is None and epoch < self.max_epochs and now - self._last_line < self.min_interval:
            return None
        self._last_line = now
        line = self.line(epoch, loss, valid)
        logger.info(line)
        if self.echo and not logger.isEnabledFor(logging.INFO):
            from tqdm.auto import tqdm

            tqdm.write(line, file=sys.stderr)
        return line

    def line(self, epoch: int, loss: float | None, valid: float | None) -> str:
        per = sum(self._seconds) / len(self._seconds)
        parts = [f"{self.name} {self.unit} {epoch}/{self.max_epochs}"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if valid is not None:
            parts.append(f"valid ndcg@10 {valid:.4f}")
        if self.best is not None:
            parts.append(f"best {self.best:.4f} @{self.best_epoch}")
        parts.append(f"{per:.1f} s/{self.unit}")
        left_max = self.max_epochs - epoch
        if left_max > 0:
            eta_max = _duration(left_max * per)
            left_stop = self._left_until_patience(epoch)
            if left_stop is not None and left_stop < left_max:
                parts.append(f"eta {_duration(left_stop * per)} (if no new best) to {eta_max} (max_epochs)")
            else:
                parts.append(f"eta {eta_max}")
        return "  ".join(parts)

    def _left_until_patience(self, epoch: int) -> int | None:
        """Epochs still to run if no later validation improves (None: no early stopping)."""
        if self.patience is None:
            return None
        next_check = (epoch // self.eval_every + 1) * self.eval_every
        last = next_check + (self.patience - self.bad - 1) * self.eval_every
        return max(min(last, self.max_epochs) - epoch, 0)
