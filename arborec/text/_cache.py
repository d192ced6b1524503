"""A vector cache keyed by (model, text hash): re-encoding a catalogue only encodes texts it has not seen."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from arborec.data import private_tmp


def text_key(text: str) -> bytes:
    """20-byte digest of a text (the cache key within one model)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


class VectorCache:
    """Append-only shards of (text digest, vector) under ``folder``; one folder per model and precision.

    Each :meth:`add` writes one new ``.npz`` shard, so an interrupted run loses nothing already
    written and concurrent readers never see a half-written file (shards are renamed into place).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._keys: dict[bytes, tuple[int, int]] | None = None
        self._shards: list[np.ndarray] = []

    def _load(self) -> None:
        if self._keys is not None:
            return
        self._keys, self._shards = {}, []
        for path in sorted(self.folder.glob("shard-*.npz")):
            with np.load(path) as z:
                keys, vectors = z["keys"], z["vectors"]
            s = len(self._shards)
            self._shards.append(vectors)
            self._keys.update({k.tobytes(): (s, r) for r, k in enumerate(keys)})

    def __len__(self) -> int:
        self._load()
        return len(self._keys)

    def lookup(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """Return (found mask (n,), vectors (n, d) with zero rows where not found; None if nothing found)."""
        self._load()
        found = np.array([k in self._keys for k in keys], dtype=bool)
        if not found.any():
            return found, None
        dim = self._shards[0].shape[1]
        out = np.zeros((len(keys), dim), dtype=np.float32)
        for i in np.flatnonzero(found):
            s, r = self._keys[keys[i]]
            out[i] = self._shards[s][r]
        return found, out

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Store new vectors (keys already present are skipped)."""
        self._load()
        new = [i for i, k in enumerate(keys) if k not in self._keys]
        if not new:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        key_arr = np.array([np.frombuffer(keys[i], dtype=np.uint8) for i in new])
        vec_arr = np.ascontiguousarray(vectors[new], dtype=np.float32)
        n = len(list(self.folder.glob("shard-*.npz")))
        # the count orders shards; the random part keeps two processes adding at once from sharing a name
        shard = self.folder / f"shard-{n:06d}-{uuid.uuid4().hex[:8]}.npz"
        tmp = private_tmp(shard)
        np.savez(tmp, keys=key_arr, vectors=vec_arr)
        os.replace(tmp, shard)
        s = len(self._shards)
        self._shards.append(vec_arr)
        self._keys.update({keys[i]: (s, r) for r, i in enumerate(new)})
