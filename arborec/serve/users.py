"""The users the service holds in memory: one record each, a cache bounded to the most recently used,
and their states packed as JSON for the store."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UserRecord:
    """What the service holds in memory for one user (replaced, never mutated, on each update)."""

    state: dict
    n_events: int
    last_timestamp: int
    segment: int | None  # the user's segment (Segmenter.predict on this profile), None without events or segments
    interests: dict | None = None  # scorer.interests(state), computed once per update


class UserCache:
    """The users held in memory: a dict bounded to ``size`` entries, least recently used evicted first."""

    def __init__(self, size: int):
        self.size = int(size)
        self._data: OrderedDict[str, UserRecord] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def get(self, key: str) -> UserRecord | None:
        with self._lock:
            record = self._data.get(key)
            if record is not None:
                self._data.move_to_end(key)
            return record

    def put(self, key: str, record: UserRecord) -> None:
        with self._lock:
            self._data[key] = record
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
                self.evictions += 1

    def pop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)


def pack_state(state: dict) -> dict:
    """A scorer state as JSON-able values (numpy arrays as dtype, shape and values; no pickle)."""
    def pack(value):
        if isinstance(value, np.ndarray):
            return {"__array__": str(value.dtype), "shape": list(value.shape), "values": value.ravel().tolist()}
        if isinstance(value, (list, tuple)):
            return [pack(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value
    return {name: pack(value) for name, value in state.items()}


def unpack_state(packed: dict) -> dict:
    """The state :func:`pack_state` packed."""
    def unpack(value):
        if isinstance(value, dict) and "__array__" in value:
            return np.asarray(value["values"], dtype=value["__array__"]).reshape(value["shape"])
        if isinstance(value, list):
            return [unpack(v) for v in value]
        return value
    return {name: unpack(value) for name, value in packed.items()}
