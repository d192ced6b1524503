"""Histories -> left-padded next-item training windows (every position, or one prefix per target), and batches."""

from __future__ import annotations

import numpy as np


def pad_left(indptr: np.ndarray, items: np.ndarray, max_len: int, shift: int = 1) -> np.ndarray:
    """(B, max_len) int64: the last ``max_len`` items of each CSR row + ``shift``, left-padded with 0.

    The vectorised twin of :meth:`arborec.data.Histories.to_padded`.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    lens = np.minimum(np.diff(indptr), max_len)
    out = np.zeros((len(lens), max_len), dtype=np.int64)
    rows = np.repeat(np.arange(len(lens)), lens)
    # k-th kept item of row b: column max_len - lens[b] + k, source indptr[b+1] - lens[b] + k
    k = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    cols = np.repeat(max_len - lens, lens) + k
    src = np.repeat(indptr[1:] - lens, lens) + k
    out[rows, cols] = items[src].astype(np.int64) + shift
    return out


def training_windows(indptr: np.ndarray, items: np.ndarray, max_len: int,
                     earlier_windows: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Next-item training pairs of every user, as left-padded (n_windows, max_len) int64 arrays.

    A user's sequence ``s`` (length n >= 2) gives inputs ``s[:-1]`` and targets ``s[1:]`` (both as
    ids + 1, 0 = padding). Only the most recent ``max_len`` targets are kept, unless
    ``earlier_windows``: then the earlier targets form more windows of ``max_len`` (each window's
    inputs are only the items inside it).
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    lens = np.diff(indptr)
    users = np.flatnonzero(lens >= 2)
    n_targets = lens[users] - 1
    # Each window is the slice [start, end) of a user's sequence: inputs [start, end-1), targets [start+1, end).
    if earlier_windows:
        n_win = -(-n_targets // max_len)  # ceil
        owner = np.repeat(np.arange(len(users)), n_win)
        back = np.arange(n_win.sum()) - np.repeat(np.cumsum(n_win) - n_win, n_win)  # 0 = most recent
        ends = indptr[users[owner] + 1] - back * max_len
    else:
        owner = np.arange(len(users))
        ends = indptr[users + 1]
    starts = np.maximum(ends - max_len - 1, indptr[users[owner]])
    win_ptr = np.zeros(len(ends) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=win_ptr[1:])
    flat = items[np.repeat(starts - win_ptr[:-1], ends - starts) + np.arange(win_ptr[-1])]
    # inputs: every window minus its last item; targets: minus its first
    keep_in = np.ones(len(flat), dtype=bool)
    keep_in[win_ptr[1:] - 1] = False
    keep_tg = np.ones(len(flat), dtype=bool)
    keep_tg[win_ptr[:-1]] = False
    sub_ptr = win_ptr - np.arange(len(win_ptr))
    return pad_left(sub_ptr, flat[keep_in], max_len), pad_left(sub_ptr, flat[keep_tg], max_len)


def prefix_windows(indptr: np.ndarray, items: np.ndarray, max_len: int,
                   earlier_windows: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One training pair per target, its input holding only the items before it (for non-causal encoders).

    Target ``s[p]`` (p >= 1) of a user's sequence ``s`` gets the input ``s[max(0, p - max_len):p]``;
    the targets are the most recent ``max_len`` of the sequence (all of them with ``earlier_windows``).
    Returns left-padded (n_pairs, max_len) int64 arrays (ids + 1, 0 = padding) whose targets are zero
    except in the last column, so a loss over the non-padding targets reads the last position only.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    lens = np.diff(indptr)
    users = np.flatnonzero(lens >= 2)
    first = np.ones(len(users), dtype=np.int64) if earlier_windows else np.maximum(1, lens[users] - max_len)
    n_pairs = lens[users] - first  # targets per user
    owner = np.repeat(np.arange(len(users)), n_pairs)
    k = np.arange(n_pairs.sum()) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)  # 0.. within a user
    target_at = indptr[users[owner]] + first[owner] + k  # index into items of each pair's target
    starts = np.maximum(target_at - max_len, indptr[users[owner]])
    ptr = np.zeros(len(target_at) + 1, dtype=np.int64)
    np.cumsum(target_at - starts, out=ptr[1:])
    flat = items[np.repeat(starts - ptr[:-1], target_at - starts) + np.arange(ptr[-1])]
    inputs = pad_left(ptr, flat, max_len)  # (n_pairs, max_len)
    targets = np.zeros_like(inputs)
    targets[:, -1] = items[target_at].astype(np.int64) + 1
    return inputs, targets


def batch_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of row indices; rows of similar length share a batch (less padding).

    Rows are shuffled, then sorted by length inside chunks of 50 batches, and the batches are
    shuffled again, so an epoch still mixes lengths and users at random.
    """
    perm = rng.permutation(len(lengths))
    chunk = 50 * batch_size
    batches = []
    for c in range(0, len(perm), chunk):
        part = perm[c:c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
