"""Reads before event application: how a batch of events gives way to the recommendation reads in flight."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager


class ReadsFirst:
    """Reads before event application: an ingest pauses between users while a read is in flight.

    A service applying a batch of events is busy Python for tens of milliseconds; the threads answering
    recommendations share one interpreter lock with it and used to queue behind it (p99 during a saturated
    event stream ~10x the warm figure, benchmarks/results/serve_memory_1000000.md). Here each read announces
    itself (``with reads.reading():``, taken as the request arrives) and the ingest calls :meth:`pause` between
    users: while reads are in flight it waits, for at most ``max_wait`` seconds per pause and ``budget``
    seconds per batch (:meth:`applying`), so that many reads, or a slow client, slow ingestion but never stop
    it. Events are still acknowledged only once stored and applied; what waits is the acknowledgement.
    """

    def __init__(self, max_wait: float = 0.02, budget: float = 0.1):
        self.max_wait, self.budget = float(max_wait), float(budget)
        self._readers = 0
        self._idle = threading.Condition()
        self._left = self.budget  # of the batch being applied (one at a time: the service's lock)
        self.pauses = 0  # pauses that waited (a measure of how much ingestion gave way)

    @contextmanager
    def applying(self):
        """One batch's application: its pauses together wait at most ``budget`` seconds."""
        self._left = self.budget
        yield

    @contextmanager
    def reading(self):
        with self._idle:
            self._readers += 1
        try:
            yield
        finally:
            with self._idle:
                self._readers -= 1
                if not self._readers:
                    self._idle.notify_all()

    @property
    def readers(self) -> int:
        """Reads in flight now."""
        return self._readers

    def pause(self) -> None:
        """Wait while reads are in flight (at most ``max_wait`` seconds); return at once when there are none."""
        if not self._readers or self._left <= 0:  # unlocked read: a read starting now waits for the next pause
            return
        with self._idle:
            if self._readers:
                self.pauses += 1
                start = time.perf_counter()
                self._idle.wait_for(lambda: not self._readers, timeout=min(self.max_wait, self._left))
                self._left -= time.perf_counter() - start
