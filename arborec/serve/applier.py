"""Event application in a process of its own: the serving process answers reads, a forked child stores events."""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
from typing import NamedTuple

from arborec.diagnostics import ArborecError, logger


class _Event(NamedTuple):
    """One event as sent to the applier (what `InterestService.apply_events` reads of an event)."""

    user: str
    item: str
    timestamp: int
    event_type: str
    event_id: str | None


IN_MEMORY_URLS = ("sqlite://", "sqlite:///:memory:")  # stores a forked process cannot share


def start_event_process(service) -> EventApplier | None:
    """Attach an `EventApplier` to ``service`` (what ``arborec serve`` does with ``events_process`` on), or say
    why not and return None: an in-memory store, or a platform that cannot fork."""
    if service.store.url in IN_MEMORY_URLS:
        logger.info("in-memory store: events are stored and applied in the serving process")
    elif "fork" not in mp.get_all_start_methods():
        logger.warning("this platform cannot fork: events are stored and applied in the serving process")
    else:
        service.applier = EventApplier(service)
    return service.applier


class EventApplier:
    """Stores and applies the service's events in a child process forked from the loaded service.

    Within one process, applying a batch of events (tens of milliseconds of Python, and the garbage-collector
    passes over what it allocates) holds the interpreter lock that the reads need: during a saturated event
    stream, p99 of recommendations was ~10x the warm figure (benchmarks/notes/serve_stream_tail.md). Here the
    child, a copy-on-write fork of the loaded service, stores and applies each batch (`apply_events`) and sends
    back what changed; this process takes it (`take_changes`): the new records of users it holds, segment moves
    and item counts. Users it does not hold are rebuilt from the store when asked for, as after an eviction.
    Events are acknowledged once the child has committed them, as before. Batches go one at a time.

    If the child dies, the batch in flight is refused with `EventProcessStopped` (it may or may not have been
    stored: the client sends it again, exactly once with event ids), its users are dropped here (rebuilt from
    the store), and ``failed`` is set: the service then stores and applies events itself (logged). Start it
    with `start_event_process`, before the server's threads (a fork copies only the calling thread); `close`
    stops it.
    """

    def __init__(self, service):
        if service.store.url in IN_MEMORY_URLS:
            raise ArborecError("events can be applied in a process of their own only with a store both processes "
                               "open (a database file or server), not an in-memory SQLite database")
        self.service = service
        context = mp.get_context("fork")
        self._conn, child = context.Pipe()
        self._lock = threading.Lock()
        self.process = context.Process(target=_child, args=(service, child, self._conn), name="arborec-events",
                                       daemon=True)
        self.process.start()
        child.close()
        self.failed = False
        self.users_held = self.users_evicted = 0  # in the child's memory, as of its last batch

    def ingest(self, events: list) -> list[str]:
        """Store and apply ``events`` in the child; take the changes here. Returns the users answered."""
        sent = [_Event(e.user, e.item, int(e.timestamp), getattr(e.event_type, "value", e.event_type),
                       getattr(e, "event_id", None)) for e in events]
        with self._lock:
            held = [u for u in dict.fromkeys(e.user for e in sent) if u in self.service._users]
            try:
                if self.failed:  # stopped while this batch waited for the one before
                    raise _ChildGone
                answered, changes, commits, (self.users_held, self.users_evicted) = self._ask(("ingest", sent, held))
            except _ChildGone:
                for user_id in {e.user for e in sent}:
                    self.service._users.pop(user_id)
                raise EventProcessStopped("the event process stopped while applying this batch, which may or may "
                                          "not be stored: send it again (events with an event_id land once); this "
                                          "process applies events from now on") from None
            self._report(commits)
            self.service.take_changes(changes, held_only=True)
            return answered

    def forget(self, user_id: str, forget_here) -> dict:
        """Run ``forget_here`` (the store and this process) with no batch in flight, then drop the user from
        the child's memory (its state and batch-log history)."""
        with self._lock:
            out = forget_here()
            if not self.failed:
                try:
                    self._ask(("forget", user_id))
                except _ChildGone:
                    pass
            return out

    def _ask(self, message):
        try:
            self._conn.send(message)
            status, payload = self._conn.recv()
        except (EOFError, OSError) as exc:
            self.failed = True
            logger.error("the event-application process stopped (%s): events are applied in the serving "
                         "process from now on", exc)
            raise _ChildGone from exc
        if status == "error":
            exc, commits = payload
            self._report(commits)
            raise exc
        return payload

    def _report(self, commits) -> None:
        """The child's commit timings and failures, to this process's metrics."""
        if self.service.store.on_commit is not None:
            for seconds, ok in commits:
                self.service.store.on_commit(seconds, ok)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child (after the batch in flight)."""
        with self._lock:
            if not self.failed:
                try:
                    self._conn.send(("stop",))
                except OSError:
                    pass
            self.failed = True
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class EventProcessStopped(ArborecError):
    """The event process died with a batch in flight (answered 503: the client sends it again)."""


class _ChildGone(Exception):
    pass


def _child(service, conn, parent_end) -> None:
    """The child's loop: one message at a time, answered ("ok", payload) or ("error", exception)."""
    parent_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the serving process; this one ends with its pipe
    service.store.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
    commits: list[tuple[float, bool]] = []
    service.store.on_commit = lambda seconds, ok: commits.append((seconds, ok))
    try:
        import torch

        torch.set_num_threads(1)  # the parent's thread pool does not survive a fork
    except ImportError:
        pass
    while True:
        commits.clear()
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        try:
            if message[0] == "ingest":
                _, events, held = message
                if any(e.item not in service.catalog.index_of for e in events):
                    service._restore_items()  # items the parent added since the fork
                answered, changes = service.apply_events(events)
                service.take_changes(changes)
                held = set(held)
                changes["users"] = {u: (record if u in held else None, *rest)
                                    for u, (record, *rest) in changes["users"].items()}
                reply = ("ok", (answered, changes, list(commits), (len(service._users), service._users.evictions)))
            else:  # forget: the parent has deleted the user from the store
                _, user_id = message
                service._users.pop(user_id)
                service.base_histories.pop(user_id, None)
                reply = ("ok", None)
        except Exception as exc:  # noqa: BLE001 - sent back, raised in the parent
            reply = ("error", (exc, list(commits)))
        try:
            conn.send(reply)
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its words
            exc = reply[1][0]
            conn.send(("error", (ArborecError(f"{type(exc).__name__} applying events: {exc}"), list(commits))))
