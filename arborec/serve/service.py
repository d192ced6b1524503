"""The service logic: ingest events into users' states, retrieve and explain recommendations, add items."""

from __future__ import annotations

import threading
import time

import numpy as np

from arborec.data import Histories
from arborec.diagnostics import ConfigError, DuplicateItemError, UnknownItemError, logger
from arborec.profiles import UserProfile, reason_text
from arborec.serve.catalog import ServedCatalog
from arborec.serve.new_items import place_items, stored_items
from arborec.serve.reads_first import ReadsFirst
from arborec.serve.retrieval import ItemIndex, top_k_dense
from arborec.serve.scorers import OnlineScorer
from arborec.serve.segments import ServedSegments, user_profile
from arborec.serve.settings import ServeSettings
from arborec.serve.store import Store
from arborec.serve.users import UserRecord, UserCache, pack_state, unpack_state

PREDICT_CHUNK = 100  # users whose segment an ingest predicts at once (about 4 ms, measured; then it may pause)


class InterestService:
    """Users' real-time interest states over a catalogue, backed by a durable store.

    Parameters
    ----------
    scorer : OnlineScorer
    catalog : ServedCatalog (its items are the scorer's items, in the same order)
    store : Store (events, users, added items)
    settings : ServeSettings
    base_histories : dict user id -> item indices (oldest first): the batch log the model was
        trained on; live events from the store are applied on top of it
    encoder : anything with ``encode(list[str]) -> (n, d)`` L2-normalised vectors (for new items and
        stated interests); created on first use when None

    At start, every known user (batch log and store) is profiled and the user segments are fitted
    (``arborec.profiles.Segmenter``, see `ServedSegments`); users then move between segments as their
    events arrive. Users deleted earlier (the store's tombstones) are left out of the batch log.
    At most ``settings.user_cache_size`` users are held in memory; the others are rebuilt from the
    batch log and the store when asked for.
    """

    def __init__(self, scorer: OnlineScorer, catalog: ServedCatalog, store: Store, settings: ServeSettings,
                 base_histories: dict[str, np.ndarray] | None = None, encoder=None, name: str = "model"):
        self.scorer = scorer
        self.catalog = catalog
        self.store = store
        self.settings = settings
        self.base_histories = base_histories or {}
        if self.base_histories and store.n_forgotten():
            for user in store.forgotten(self.base_histories):
                del self.base_histories[user]
        self.encoder = encoder
        self.name = name
        self._users = UserCache(settings.user_cache_size)
        self._base_of_key: dict[str, str] | None = None  # stored key -> batch-log id (pseudonyms only)
        self._lock = threading.RLock()
        self.reads = ReadsFirst()  # reads announce themselves; ingest gives way between users
        self.applier = None  # an EventApplier: events stored and applied in a process of its own
        self.text_index = ItemIndex(catalog.vectors)
        vectors = scorer.item_vectors()
        self.model_index = ItemIndex(vectors) if vectors is not None else None
        self.segmentation = ServedSegments(catalog.tree, settings.segments, settings.segment_fit_users,
                                           settings.segment_seed)
        self._restore_items()
        self._fit_segments()

    @property
    def n_users_live(self) -> int:
        """Users whose state is held in memory (here, and in the event process's memory when there is one)."""
        return len(self._users) + (self.applier.users_held if self.applier is not None else 0)

    @property
    def n_users_evicted(self) -> int:
        """Users evicted from memory since start (each process's cache is bounded by ``settings.user_cache_size``)."""
        return self._users.evictions + (self.applier.users_evicted if self.applier is not None else 0)

    # -- users' state -----------------------------------------------------------------------------
    def user(self, user_id: str) -> UserRecord | None:
        """The user's record: from memory, else rebuilt from the batch log plus the store; None if unknown.

        A rebuilt record is kept in memory; while an ingest holds the service, it is rebuilt from the store
        without waiting and not kept (it then answers as of the last acknowledged event)."""
        record = self._users.get(user_id)
        if record is not None:
            return record
        if not self._lock.acquire(blocking=False):
            return self._load([user_id])[user_id][0]
        try:
            record = self._users.get(user_id)
            if record is not None:
                return record
            record, counted = self._load([user_id])[user_id]
            if record is not None:
                self._users.put(user_id, record)
                self.segmentation.place(self.store.key(user_id), record.segment, before=counted)
            return record
        finally:
            self._lock.release()

    def _load(self, user_ids: list[str], segments: bool = True,
              between=None) -> dict[str, tuple[UserRecord | None, int | None]]:
        """Rebuild users' records: the state folded by retention (or the batch log), then the stored events.

        For each user: (record or None when unknown, the segment they are counted in: as stored with their
        last events, else None). The record's segment is the one known for the user (assigned at start, or
        stored with their last events), predicted from the rebuilt state when neither is; with
        ``segments=False`` the counted one (the caller predicts the new one). ``between`` (no arguments) is
        called before each user (the ingest's pause for reads)."""
        rows = self.store.users_rows(user_ids)
        out: dict[str, tuple[UserRecord | None, int | None]] = {}
        for user_id in user_ids:
            if between is not None:
                between()
            stored, row = rows[user_id]
            folded = row["folded"] if row is not None else None
            counted = row["segment"] if row is not None else None
            base = self.base_histories.get(user_id)
            if base is None and not stored and folded is None:
                out[user_id] = (None, counted)
                continue
            state, n_events = self._rebuilt_state(folded, row["folded_n"] if folded is not None else 0, base,
                                                  [item for item, _ in stored])
            last = max([ts for _, ts in stored] + [row["last_timestamp"] if folded is not None else 0])
            interests = self.scorer.interests(state) if n_events else None
            segment = counted
            if segments:  # the segment known for the user (as at start, or stored with their last events) is
                # the prediction for this very state: predicted again only when neither is known (~3 ms)
                known = self.segmentation.segment_of(self.store.key(user_id))
                segment = (known if known is not None else counted if counted is not None
                           else self.segmentation.predict(interests, user_id))
            out[user_id] = (UserRecord(state, int(n_events), int(last), segment, interests), counted)
        return out

    def ingest(self, events: list) -> list[str]:
        """Validate, store (committed) and apply ``events`` (objects with user, item, timestamp, event_type).

        Returns the users whose state changed. Raises UnknownItemError before writing anything when
        an event names an item the catalogue lacks. With an `EventApplier` attached (``self.applier``, what
        ``arborec serve`` runs), the storing and applying happen in its process and this one takes the changes.
        """
        index_of = self.catalog.index_of
        unknown = sorted({e.item for e in events if e.item not in index_of})
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise UnknownItemError(f"unknown item id(s): {shown}; add items with POST /items first")
        if self._events_apart():
            return self.applier.ingest(events)
        with self._lock:  # one batch stored and put in memory before the next one reads the users' records
            answered, changes = self.apply_events(events)
            self.take_changes(changes)
        return answered

    def _events_apart(self) -> bool:
        """Whether events go to the event process (there is one, and it has not stopped)."""
        return self.applier is not None and not self.applier.failed

    def apply_events(self, events: list) -> tuple[list[str], dict]:
        """Store (committed) and apply known-item ``events``: (the users answered, the changes), the changes
        being what `take_changes` puts in memory: each changed user's new record, segment move and items."""
        index_of = self.catalog.index_of
        answered = list(dict.fromkeys(e.user for e in events))
        with self._lock, self.reads.applying():
            events = self._new_events(events)  # an event id already stored (a retry): acknowledged, not applied
            by_user: dict[str, list] = {}
            for e in events:
                by_user.setdefault(e.user, []).append(e)
            cached = {user_id: self._users.get(user_id) for user_id in by_user}
            missing = [user_id for user_id, record in cached.items() if record is None]
            if missing:  # rebuilt together (one query per 500 users); their new segment is predicted below
                loaded = self._load(missing, segments=False, between=self.reads.pause)
                cached.update({u: record for u, (record, _) in loaded.items()})
            changes = []
            for user_id, evs in by_user.items():
                self.reads.pause()
                old = cached[user_id]
                state = old.state if old is not None else self.scorer.new_state()
                items = np.array([index_of[e.item] for e in evs], dtype=np.int64)
                new_state = self.scorer.update(state, items)
                interests = self.scorer.interests(new_state)  # once per update: summary and segment
                last = max([e.timestamp for e in evs] + [old.last_timestamp if old else 0])
                changes.append((user_id, new_state, (old.n_events if old else 0) + len(evs), last, interests, items))
            segments = []  # predicted a chunk at a time, so that reads in flight wait one chunk at most
            for start in range(0, len(changes), PREDICT_CHUNK):
                self.reads.pause()
                chunk = changes[start:start + PREDICT_CHUNK]
                segments += self.segmentation.predict_many([c[4] for c in chunk], [c[0] for c in chunk])
            updated, snapshots = {}, {}
            for (user_id, new_state, n_events, last, interests, items), segment in zip(changes, segments):
                self.reads.pause()
                before = cached[user_id].segment if cached[user_id] is not None else None
                updated[user_id] = (UserRecord(new_state, n_events, last, segment, interests), segment, items, before)
                snapshots[user_id] = {"n_events": n_events, "last_timestamp": last,
                                      "state": {**self._summary(interests), "segment": segment}}
            if events:
                rows = [{"user_id": e.user, "item_id": e.item, "timestamp": e.timestamp,
                         "event_type": getattr(e.event_type, "value", e.event_type),
                         "event_id": getattr(e, "event_id", None)} for e in events]
                self.store.add_events(rows=rows, user_states=snapshots, between=self.reads.pause)  # committed
        return answered, {"users": updated, "items": np.array([index_of[e.item] for e in events], np.int64)}

    def take_changes(self, changes: dict, held_only: bool = False) -> None:
        """Put what `apply_events` changed in memory: the users' records, segments and item counts.

        ``held_only``: changes made by another process (`EventApplier`): only users held here take their new
        record (those without one, or not held, are dropped, to be rebuilt from the store when asked for)."""
        with self._lock:
            for user_id, (record, segment, items, before) in changes["users"].items():
                self.reads.pause()
                if record is None or (held_only and user_id not in self._users):
                    self._users.pop(user_id)
                else:
                    self._users.put(user_id, record)
                self.segmentation.place(self.store.key(user_id), segment, items, before=before)
            np.add.at(self.catalog.counts, changes["items"], 1.0)

    def _new_events(self, events: list) -> list:
        """``events`` without those whose ``event_id`` is stored already or came earlier in the batch."""
        ids = [e.event_id for e in events if getattr(e, "event_id", None) is not None]
        if not ids:
            return events
        seen = self.store.known_event_ids(list(set(ids)))
        fresh = []
        for e in events:
            event_id = getattr(e, "event_id", None)
            if event_id is not None:
                if event_id in seen:
                    continue
                seen.add(event_id)
            fresh.append(e)
        if len(fresh) < len(events):
            logger.info("%d event(s) with an event_id already stored: acknowledged again, not applied",
                        len(events) - len(fresh))
        return fresh

    # -- personal data: forget, export, retention -------------------------------------------------
    def forget(self, user_id: str) -> dict:
        """Delete everything held about the user: stored events and row, in-memory state, batch-log history,
        segment membership and their share of the item and segment counts; a tombstone (a keyed hash of the
        id and the time) keeps a restart, and `arborec fit --forget-store`, from bringing them back."""
        if self._events_apart():  # no event of theirs applied meanwhile; the applier's copy dropped after
            return self.applier.forget(user_id, lambda: self._forget_here(user_id))
        return self._forget_here(user_id)

    def _forget_here(self, user_id: str) -> dict:
        with self._lock:
            index_of = self.catalog.index_of
            record = self._users.get(user_id)
            counted = record.segment if record is not None else self._load([user_id], segments=False)[user_id][1]
            base = self.base_histories.pop(user_id, None)
            live = [index_of[item] for item, _, _ in self.store.user_events(user_id) if item in index_of]
            items = np.concatenate([base if base is not None else np.zeros(0, np.int64),
                                    np.asarray(live, np.int64)]).astype(np.int64)
            n_stored = self.store.delete_user(user_id)
            self._users.pop(user_id)
            if self._base_of_key is not None:
                self._base_of_key.pop(self.store.key(user_id), None)
            self.segmentation.forget(self.store.key(user_id), items, segment=counted)
            np.subtract.at(self.catalog.counts, items, 1.0)
            np.maximum(self.catalog.counts, 0.0, out=self.catalog.counts)
        logger.info("a user was forgotten: %d stored and %d batch-log events removed", n_stored,
                    0 if base is None else len(base))
        return {"user": user_id, "forgotten": True, "stored_events_deleted": n_stored,
                "batch_events_dropped": 0 if base is None else int(len(base))}

    def export(self, user_id: str) -> dict:
        """Everything held about the user: stored events, batch-log history, stored summary, profile, segment."""
        stored = self.store.user_event_rows(user_id)
        snapshot = self.store.user_snapshot(user_id)
        base = self.base_histories.get(user_id)
        profile = self.interests(user_id)
        return {"user": user_id, "known": profile["known"], "n_events": profile["n_events"],
                "events": stored,
                "batch_history": [self.catalog.item_ids[i] for i in base] if base is not None else [],
                "folded_events": int(snapshot["folded_n"] or 0) if snapshot and snapshot["folded"] else 0,
                "stored_summary": snapshot["state"] if snapshot else None,
                "segment": profile["segment"], "segment_label": profile["segment_label"],
                "interests": profile["nodes"], "pseudonymised": self.store.key.enabled}

    def _rebuilt_state(self, folded, folded_n: int, base, items: list[str]):
        """(state, n_events): the state retention folded (else the batch-log history ``base``), advanced by the
        stored ``items`` (item ids; those no longer in the catalogue are skipped)."""
        if folded is not None:
            state, n = unpack_state(folded), int(folded_n or 0)
        else:
            state, n = self.scorer.new_state(), 0
            if base is not None and len(base):
                state, n = self.scorer.update(state, base), len(base)
        index_of = self.catalog.index_of
        live = np.array([index_of[item] for item in items if item in index_of], np.int64)
        if len(live):
            state = self.scorer.update(state, live)
        return state, n + len(live)

    def apply_retention(self, now_ms: int | None = None) -> dict:
        """Fold every raw event received more than ``settings.retention_days`` ago into its user's stored
        state, then delete it (answers stay the same). Returns {"users": ..., "events_removed": ...}."""
        days = self.settings.retention_days
        if days is None:
            return {"users": 0, "events_removed": 0}
        now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        old = self.store.old_events(now_ms - int(days * 86_400_000))
        removed = 0
        for user_key, rows in old.items():
            with self._lock:
                snapshot = self.store.snapshot_of_key(user_key)
                folded = snapshot["folded"] if snapshot is not None else None
                base = None if folded is not None else self.base_histories.get(self._base_id(user_key), None)
                state, n = self._rebuilt_state(folded, int(snapshot["folded_n"] or 0) if folded is not None else 0,
                                               base, [item for _, item in rows])
                removed += self.store.fold(user_key=user_key, last_row_id=rows[-1][0], state=pack_state(state),
                                           folded_n=n)
        if removed:
            logger.info("retention: %d raw events of %d users folded into their state and deleted", removed, len(old))
        return {"users": len(old), "events_removed": removed}

    def _base_id(self, user_key: str) -> str | None:
        """The batch-log id whose stored key is ``user_key``."""
        if not self.store.key.enabled:
            return user_key
        if self._base_of_key is None:
            self._base_of_key = {self.store.key(u): u for u in self.base_histories}
        return self._base_of_key.get(user_key)

    # -- recommendations --------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int = 10, explain: bool = True, diverse: bool = False,
                  interest: str | None = None, segment: int | None = None) -> dict:
        """Top-``k`` items for the user (history filtered), each with the interest path it serves."""
        record = self.user(user_id)
        if record is None or record.n_events == 0:
            return self._cold_start(user_id, k, interest, segment)
        state = record.state
        seen = self.scorer.recent(state)
        n_candidates = max(4 * k, 50) if diverse else k
        query = self.scorer.query(state) if self.model_index is not None else None
        if query is not None:
            ids, scores = self.model_index.search(query, n_candidates, exclude=seen)
        else:
            ids, scores = top_k_dense(self.scorer.scores(state), n_candidates, exclude=seen)
        if diverse:
            ids, scores = _round_robin(ids, scores, self.catalog.tree.codes[ids, 0], k)
        profile = _normalised(record.interests) if explain else None
        items = [self._describe(int(i), float(s), profile, seen if explain else None) for i, s in zip(ids, scores)]
        return {"user": user_id, "known": True, "strategy": "model", "segment": record.segment,
                "items": items}

    def _cold_start(self, user_id: str, k: int, interest: str | None, segment: int | None) -> dict:
        codes = self.catalog.tree.codes
        counts = self.catalog.counts
        if interest:
            query = self._encode([interest])[0]
            ids, sims = self.text_index.search(query, k)
            items = [self._describe(int(i), float(s), None, None,
                                    reason=f"close to your stated interest {interest!r}")
                     for i, s in zip(ids, sims)]
            return {"user": user_id, "known": False, "strategy": "stated-interest", "segment": None, "items": items}
        labels = self.catalog.tree.labels[0]
        if segment is not None:
            ids, scores = self.segmentation.popular(segment, k, counts)
            name = self.segmentation.segmenter.names_[segment]
            items = [self._describe(int(i), float(s), None, None,
                                    reason=f"popular with the users of segment {segment}: {name}")
                     for i, s in zip(ids, scores)]
            return {"user": user_id, "known": False, "strategy": "popular-in-segment", "segment": segment,
                    "items": items}
        ids, scores = top_k_dense(counts, max(4 * k, 50))
        ids, scores = _round_robin(ids, scores, codes[ids, 0], k)
        items = [self._describe(int(i), float(s), None, None, reason=f"popular in {labels[codes[i, 0]]}")
                 for i, s in zip(ids, scores)]
        return {"user": user_id, "known": False, "strategy": "popular-in-segments", "segment": None, "items": items}

    def _describe(self, item: int, score: float, profile: dict | None, seen: np.ndarray | None,
                  reason: str | None = None) -> dict:
        path = self.catalog.path_labels(item)
        out = {"item": self.catalog.item_ids[item], "title": self.catalog.titles[item], "score": score,
               "path": path, "interest": None, "because": None, "reason": reason}
        if profile is not None:
            codes = self.catalog.tree.codes[item]
            floor = self.settings.min_share
            for level in range(len(codes) - 1, -1, -1):  # the finest interest of the user this item sits under
                node = int(codes[level])
                long, short = profile["long"][level][node], profile["short"][level][node]
                if max(long, short) >= floor and max(long, short) > 0:
                    out["interest"] = {"level": level + 1, "node": node, "path": path[:level + 1],
                                       "long_share": round(float(long), 4), "short_share": round(float(short), 4)}
                    # worded from what the numbers support (the page and the report use the same sentence)
                    n_items = int((self.catalog.tree.codes[seen, level] == node).sum()) if seen is not None else 0
                    out["reason"] = reason_text(path[:level + 1], float(long), float(short), n_items,
                                                n_history=0 if seen is None else len(seen))
                    break
            if out["reason"] is None:
                out["reason"] = reason_text(path, 0.0, 0.0, 0, matched=False)
        if seen is not None and len(seen):
            # the recent item sharing the longest tree path with this one, the closest text among those
            recent = seen[-50:]
            codes = self.catalog.tree.codes
            shared = np.cumprod(codes[recent] == codes[item], axis=1).sum(1)  # (n_recent,) common path length
            sims = self.catalog.vectors[recent] @ self.catalog.vectors[item]
            best = int(recent[int(np.lexsort((sims, shared))[-1])])
            out["because"] = self.catalog.titles[best] or self.catalog.item_ids[best]
        return out

    # -- the page's look-ups: a user's recent items, item search ------------------------------------
    def item_summary(self, item: int) -> dict:
        return {"item": self.catalog.item_ids[item], "title": self.catalog.titles[item],
                "path": self.catalog.path_labels(item)}

    def recent_items(self, user_id: str, limit: int = 10) -> dict:
        """The user's last ``limit`` items, newest first (none for an unknown user)."""
        record = self.user(user_id)
        if record is None or record.n_events == 0:
            return {"user": user_id, "n_events": 0, "items": []}
        recent = self.scorer.recent(record.state)[::-1][:limit]
        return {"user": user_id, "n_events": record.n_events, "items": [self.item_summary(int(i)) for i in recent]}

    def search_items(self, query: str, limit: int = 10) -> dict:
        """Items whose title or id contains ``query`` (case-insensitive), the most used first."""
        q = query.casefold()
        hits = [i for i, (item, title) in enumerate(zip(self.catalog.item_ids, self.catalog.titles))
                if q in title.casefold() or q in item.casefold()]
        hits.sort(key=lambda i: -self.catalog.counts[i])
        return {"query": query, "items": [self.item_summary(i) for i in hits[:limit]]}

    # -- interests and segments -------------------------------------------------------------------
    def profile(self, user_id: str) -> UserProfile | None:
        """The user's `arborec.profiles.UserProfile` (what their segment is predicted from); None without events."""
        record = self.user(user_id)
        if record is None or record.interests is None:
            return None
        return user_profile(self.catalog.tree, record.interests, user_id)

    def interests(self, user_id: str) -> dict:
        """The user's hierarchical profile: the share of long-term and recent events under each node."""
        record = self.user(user_id)
        tree = self.catalog.tree
        levels = [f"level {i + 1}" for i in range(tree.n_levels)]
        if record is None or record.n_events == 0:
            return {"user": user_id, "known": False, "n_events": 0, "short_window": self.settings.short_window,
                    "segment": None, "segment_label": None, "levels": levels, "nodes": []}
        profile = _normalised(record.interests)
        nodes = []
        for level in range(tree.n_levels):
            long, short = profile["long"][level], profile["short"][level]
            floor = max(self.settings.min_share, 1e-12)
            for node in np.flatnonzero((long >= floor) | (short >= floor)):
                nodes.append({"level": level + 1, "node": int(node), "parent": int(tree.parents[level][node]),
                              "label": tree.labels[level][node], "long": round(float(long[node]), 5),
                              "short": round(float(short[node]), 5)})
        label = self.segmentation.segmenter.names_[record.segment] if record.segment is not None else None
        return {"user": user_id, "known": True, "n_events": record.n_events,
                "short_window": self.settings.short_window, "segment": record.segment, "segment_label": label,
                "levels": levels, "nodes": nodes}

    @property
    def n_segments(self) -> int:
        return self.segmentation.n_segments

    def segments(self, top: int = 5, representatives: bool = True) -> dict:
        """The user segments: how they were made, and for each its label, size, top interests,
        representative users (left empty when not ``representatives``) and the ``top`` items most used
        by its users."""
        out = self.segmentation.summary()
        out["segments"] = []
        for s in range(self.segmentation.n_segments):
            ids, _ = self.segmentation.popular(s, top, self.catalog.counts)
            described = self.segmentation.describe(s)
            if not representatives:
                described["representatives"] = []
            out["segments"].append({**described, "top_items": [self.catalog.item_ids[i] for i in ids]})
        return out

    def _fit_segments(self) -> None:
        """Fit the segments on the batch log's users (the same segments at every start), or on every user
        with events when the log has too few; then profile every user with events and assign them."""
        t0 = time.perf_counter()
        key = self.store.key
        base = {key(user): np.asarray(items, dtype=np.int64) for user, items in self.base_histories.items()
                if len(items)}
        live: dict[str, list[int]] = {}
        index_of = self.catalog.index_of
        for user, item, _, _ in self.store.all_events():
            if item in index_of:
                live.setdefault(user, []).append(index_of[item])
        histories = dict(base)  # every user with events: the batch log, then the live events
        for user, items in live.items():
            histories[user] = np.concatenate([histories.get(user, np.zeros(0, np.int64)), items]).astype(np.int64)
        fit_on = base if self.segmentation.enough(len(base)) else histories
        self.segmentation.fit(list(fit_on), list(fit_on.values()), self._interests_batch)
        self.segmentation.assign(list(histories), list(histories.values()), self._interests_batch,
                                 self.catalog.n_items)
        logger.info("%d user segments fitted on %d users, %d users assigned, in %.2f s",
                    self.segmentation.n_segments, self.segmentation.n_fitted, len(histories), time.perf_counter() - t0)

    def _interests_batch(self, histories: Histories) -> dict[str, list[np.ndarray]]:
        batch = getattr(self.scorer, "interests_batch", None)
        if batch is not None:
            return batch(histories)
        scorer = self.scorer  # any OnlineScorer: one state per user
        rows = [scorer.interests(scorer.update(scorer.new_state(), histories.sequence(b).astype(np.int64)))
                for b in range(len(histories))]
        return {term: [np.stack([r[term][lv] for r in rows]) for lv in range(self.catalog.tree.n_levels)]
                for term in ("long", "short")}

    def _summary(self, interests: dict, top: int = 3) -> dict:
        """A small readable snapshot of a state's interests for the users table: the top ones at level 1."""
        labels = self.catalog.tree.labels[0]
        out = {}
        for term in ("long", "short"):
            p = np.asarray(interests[term][0], dtype=float)  # level 1 only
            p = p / p.sum() if p.sum() > 0 else p
            best = np.argsort(-p)[:top]
            out[term] = {labels[j]: round(float(p[j]), 3) for j in best if p[j] > 0}
        return out

    # -- items ------------------------------------------------------------------------------------
    def add_items(self, new: list) -> list[dict]:
        """Encode, store and place new items (objects with item, title, description, brand,
        category_path); they are recommendable when this returns."""
        ids = [it.item for it in new]
        dupes = sorted({i for i in ids if i in self.catalog.index_of} | {i for i in ids if ids.count(i) > 1})
        if dupes:
            raise DuplicateItemError(f"item id(s) already present: {', '.join(dupes[:5])}")
        stored = stored_items(new, self._encode)
        with self._lock:
            if any(i in self.catalog.index_of for i in ids):
                raise DuplicateItemError("item id(s) were added meanwhile")
            self.store.add_items(stored)
            return self._place_items(stored)

    def _restore_items(self) -> None:
        stored = [s for s in self.store.added_items() if s.item_id not in self.catalog.index_of]
        if stored:
            self._place_items(stored)
            logger.info("restored %d items added through the API", len(stored))

    def _place_items(self, stored: list) -> list[dict]:
        return place_items(stored, self.catalog, self.scorer, self.segmentation, self.text_index, self.model_index)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.encoder is None:
            from arborec.text import TextEncoder

            self.encoder = TextEncoder(threads=1)
        vectors = np.asarray(self.encoder.encode(texts), dtype=np.float32)
        if vectors.shape[1] != self.catalog.vectors.shape[1]:
            raise ConfigError(f"the text encoder gives {vectors.shape[1]}-dimensional vectors but the catalogue's "
                              f"are {self.catalog.vectors.shape[1]}-dimensional: serve with the text model the "
                              "item vectors were made with")
        return vectors

    # -- status -----------------------------------------------------------------------------------
    def health(self) -> dict:
        try:
            store = "ok" if self.store.ping() else "error"
        except Exception as exc:  # noqa: BLE001 - reported, not raised: health must answer
            logger.warning("store ping failed: %s", exc)
            store = "error"
        retrieval = f"faiss-{self.model_index.kind_}" if self.model_index is not None else "dense"
        events, ok = "in-process", store == "ok"
        if self.applier is not None:
            events = "in-process (event process stopped)" if self.applier.failed else "event process"
            ok = ok and not self.applier.failed
        return {"status": "ok" if ok else "degraded", "store": store, "n_items": self.catalog.n_items,
                "n_users_live": self.n_users_live, "scorer": self.name, "retrieval": retrieval, "events": events}


def _normalised(interests: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Each level's weights divided by their sum (zeros stay zeros)."""
    return {term: [w / w.sum() if w.sum() > 0 else w for w in levels] for term, levels in interests.items()}


def _round_robin(ids: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Diversify a ranked list: take the best remaining item of each group in turn (groups ordered by their best)."""
    order: dict[int, list[int]] = {}
    for pos, g in enumerate(groups):
        order.setdefault(int(g), []).append(pos)
    queues = list(order.values())  # dict keeps first-seen order = groups by best item
    picked = []
    while len(picked) < k and any(queues):
        for q in queues:
            if q and len(picked) < k:
                picked.append(q.pop(0))
    picked = np.array(picked, dtype=np.int64)
    return ids[picked], scores[picked]
