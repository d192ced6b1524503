"""Chronological leave-one-out split and the history batches every recommender scores."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from arborec.data._prepare import PreparedData
from arborec.diagnostics import logger


@dataclass(frozen=True)
class Histories:
    """A batch of item sequences in CSR form, oldest event first.

    ``items[indptr[b]:indptr[b+1]]`` is the history of the b-th user of the batch.
    """

    indptr: np.ndarray  # (B + 1,) int64
    items: np.ndarray  # (nnz,) int32

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def sequence(self, b: int) -> np.ndarray:
        return self.items[self.indptr[b]:self.indptr[b + 1]]

    def to_csr(self, n_items: int) -> sp.csr_matrix:
        """Binary (B, n_items) matrix of the items each user has seen."""
        data = np.ones(len(self.items), dtype=np.float32)
        # scipy keeps the arrays it is given and sum_duplicates() sorts them in place: pass copies.
        m = sp.csr_matrix((data, self.items.copy(), self.indptr.copy()), shape=(len(self), n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def to_padded(self, max_len: int, shift: int = 1) -> np.ndarray:
        """(B, max_len) int64 of the last ``max_len`` items + ``shift``, left-padded with 0."""
        out = np.zeros((len(self), max_len), dtype=np.int64)
        for b in range(len(self)):
            seq = self.sequence(b)[-max_len:]
            if len(seq):
                out[b, max_len - len(seq):] = seq.astype(np.int64) + shift
        return out


@dataclass(frozen=True)
class Split:
    """Chronological leave-one-out split.

    For a user with n >= 3 events: the last is the test target, the one before it the validation
    target, the first n - 2 the training history. Users with fewer events keep all of them in
    training and are not evaluated.

    Attributes
    ----------
    n_users, n_items : int
    train_indptr : ndarray (n_users + 1,) int64
    train_items : ndarray (nnz,) int32, each user's training items in time order
    train_times : ndarray (nnz,) int64, their timestamps
    valid_target, test_target : ndarray (n_users,) int32, -1 where the user is not evaluated
    """

    n_users: int
    n_items: int
    train_indptr: np.ndarray
    train_items: np.ndarray
    train_times: np.ndarray
    valid_target: np.ndarray
    test_target: np.ndarray

    def train_sequence(self, user: int) -> np.ndarray:
        return self.train_items[self.train_indptr[user]:self.train_indptr[user + 1]]

    def train_lengths(self) -> np.ndarray:
        return np.diff(self.train_indptr)

    def eval_users(self, stage: str) -> np.ndarray:
        """Users that have a target at ``stage`` ("valid" or "test")."""
        return np.flatnonzero(self._target(stage) >= 0)

    def targets(self, stage: str, users: np.ndarray) -> np.ndarray:
        return self._target(stage)[users]

    def histories(self, stage: str, users: np.ndarray) -> Histories:
        """What a model may see when predicting ``stage``'s target of ``users``.

        "valid": the training history. "test": the training history plus the validation item.
        """
        users = np.asarray(users, dtype=np.int64)
        starts, ends = self.train_indptr[users], self.train_indptr[users + 1]
        lens = ends - starts
        if stage == "test":
            extra = (self.valid_target[users] >= 0).astype(np.int64)
        elif stage in ("valid", "train"):
            extra = np.zeros(len(users), dtype=np.int64)
        else:
            raise ValueError(f"stage={stage!r}: expected 'valid' or 'test'")
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(lens + extra, out=indptr[1:])
        items = np.empty(indptr[-1], dtype=np.int32)
        # Gather all training rows at once, then drop the validation item at each row's end.
        idx = np.repeat(starts - indptr[:-1], lens + extra) + np.arange(indptr[-1])
        body = np.ones(indptr[-1], dtype=bool)
        body[indptr[1:][extra > 0] - 1] = False
        items[body] = self.train_items[idx[body]]
        items[~body] = self.valid_target[users][extra > 0]
        return Histories(indptr, items)

    def train_matrix(self) -> sp.csr_matrix:
        """Binary (n_users, n_items) matrix of the training interactions."""
        return Histories(self.train_indptr, self.train_items).to_csr(self.n_items)

    def item_train_counts(self) -> np.ndarray:
        """(n_items,) number of training events of each item."""
        return np.bincount(self.train_items, minlength=self.n_items)

    def fingerprint(self) -> str:
        """A short hash of the split's content: equal splits have equal hashes."""
        h = hashlib.sha256()
        for a in (self.train_indptr, self.train_items, self.valid_target, self.test_target):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(f"{self.n_users},{self.n_items}".encode())
        return h.hexdigest()[:16]

    def _target(self, stage: str) -> np.ndarray:
        if stage == "valid":
            return self.valid_target
        if stage == "test":
            return self.test_target
        raise ValueError(f"stage={stage!r}: expected 'valid' or 'test'")


def leave_one_out(data: PreparedData) -> Split:
    """Split each user's time-ordered events: last -> test, second to last -> valid, rest -> train."""
    df = data.interactions  # sorted by (user_idx, timestamp, file order) by prepare()
    users = df["user_idx"].to_numpy()
    items = df["item_idx"].to_numpy().astype(np.int32)
    times = df["timestamp"].to_numpy().astype(np.int64)
    if len(users) > 1 and np.any(np.diff(users) < 0):
        raise ValueError("interactions must be sorted by user_idx (use arborec.data.prepare)")
    counts = np.bincount(users, minlength=data.n_users)
    ends = np.cumsum(counts)
    evaluated = counts >= 3
    valid_target = np.full(data.n_users, -1, dtype=np.int32)
    test_target = np.full(data.n_users, -1, dtype=np.int32)
    test_target[evaluated] = items[ends[evaluated] - 1]
    valid_target[evaluated] = items[ends[evaluated] - 2]
    keep = np.ones(len(items), dtype=bool)
    keep[ends[evaluated] - 1] = False
    keep[ends[evaluated] - 2] = False
    train_counts = counts - 2 * evaluated
    indptr = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(train_counts, out=indptr[1:])
    n_skipped = int((~evaluated).sum())
    if n_skipped:
        logger.info("%s: %d users with fewer than 3 events are kept for training only", data.name, n_skipped)
    arrays = dict(train_indptr=indptr, train_items=items[keep], train_times=times[keep],
                  valid_target=valid_target, test_target=test_target)
    for a in arrays.values():
        a.flags.writeable = False  # shared by every model: an in-place change would corrupt the others
    return Split(n_users=data.n_users, n_items=data.n_items, **arrays)
