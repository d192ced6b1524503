"""The durable store (SQLAlchemy Core): events, users, added items and forgotten users, in SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sqlalchemy import (BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, create_engine,
                        cast, delete, event, func, insert, inspect, literal, null, select, text, update)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from arborec.serve.security import Pseudonymiser

WRITE_CHUNK = 100  # rows per statement of one event batch's transaction (the ingest may pause between them)

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(128), nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # when the event happened (unix seconds, client's)
    Column("event_type", String(32), nullable=False),
    Column("received_at", BigInteger, nullable=False),  # when the service acknowledged it (unix ms)
    Column("event_id", String(128), nullable=True),  # the client's id of the event: stored once
    Index("ix_events_user", "user_id", "id"),
    Index("ux_events_event_id", "event_id", unique=True),
)

users = Table(
    "users", metadata,
    Column("user_id", String(128), primary_key=True),
    Column("n_events", BigInteger, nullable=False),
    Column("last_timestamp", BigInteger, nullable=False),
    Column("state", Text, nullable=True),  # JSON snapshot of the user's interests at the last event
    Column("updated_at", BigInteger, nullable=False),
    Column("folded", Text, nullable=True),  # JSON scorer state after the events removed by retention
    Column("folded_n", BigInteger, nullable=True),  # events folded into it (batch log included)
)

tombstones = Table(
    "tombstones", metadata,
    Column("digest", String(64), primary_key=True),  # HMAC-SHA256(store secret, user id): not the id
    Column("deleted_at", BigInteger, nullable=False),  # unix ms
)

meta = Table(
    "meta", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

items = Table(
    "items", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("item_id", String(256), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("category_path", Text, nullable=False),  # JSON list of str
    Column("vector", LargeBinary, nullable=False),  # float32 bytes
    Column("added_at", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class StoredItem:
    item_id: str
    title: str
    text: str
    category_path: list[str]
    vector: np.ndarray


def make_engine(url: str, sqlite_synchronous: str = "NORMAL") -> Engine:
    """An engine for ``url``; SQLite connections get WAL mode, the given ``synchronous`` level and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten with zeros, not left in free space
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """Reads and writes of the service; every write is one transaction, committed before it returns.

    Parameters
    ----------
    url : SQLAlchemy URL (``sqlite:///file.db``, ``postgresql+psycopg://user@host/db``)
    sqlite_synchronous : the SQLite ``synchronous`` pragma (ignored by other databases)
    """

    def __init__(self, url: str, sqlite_synchronous: str = "NORMAL", pseudonym_key: str | None = None):
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous)
        self.key = Pseudonymiser(pseudonym_key)  # user id -> what the store keeps (the id, or its keyed hash)
        self.on_commit: Callable[[float, bool], None] | None = None  # (seconds, ok) of each event commit
        metadata.create_all(self.engine)
        self._add_missing_columns()
        self._tombstone_secret = self._secret("tombstone_secret")

    def _add_missing_columns(self) -> None:
        """Stores made before event ids, retention and pseudonyms get the new nullable columns."""
        found = inspect(self.engine)
        with self.engine.begin() as conn:
            for table in (events, users):
                have = {c["name"] for c in found.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in have:
                        kind = column.type.compile(dialect=self.engine.dialect)
                        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
            if "ux_events_event_id" not in {i["name"] for i in found.get_indexes("events")}:
                conn.execute(text("CREATE UNIQUE INDEX IF NOT EXISTS ux_events_event_id ON events (event_id)"))

    def _secret(self, name: str) -> bytes:
        """A random secret made once per store (kept in its meta table)."""
        with self.engine.begin() as conn:
            value = conn.execute(select(meta.c.value).where(meta.c.name == name)).scalar_one_or_none()
            if value is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(meta), [{"name": name, "value": secrets.token_hex(32)}])
                except IntegrityError:  # another process made it meanwhile
                    pass
                value = conn.execute(select(meta.c.value).where(meta.c.name == name)).scalar_one()
        return bytes.fromhex(value)

    # -- events and users ---------------------------------------------------------------------
    def add_events(self, *, rows: list[dict], user_states: dict[str, dict], between=None) -> int:
        """Insert event rows (user_id, item_id, timestamp, event_type[, event_id]) and upsert the users'
        snapshots, atomically. User ids are the service's (the store applies its pseudonyms). ``between`` (no
        arguments) is called between chunks of rows of the one transaction (the ingest's pause for reads).

        Returns the number of events written. When this returns, the transaction is committed.
        """
        now = int(time.time() * 1000)
        snapshots = [{"user_id": self.key(user_id), "n_events": snap["n_events"],
                      "last_timestamp": snap["last_timestamp"], "state": json.dumps(snap.get("state")),
                      "updated_at": now} for user_id, snap in user_states.items()]
        written = [{"event_id": None, **r, "user_id": self.key(r["user_id"]), "received_at": now} for r in rows]
        start, ok = time.perf_counter(), False
        try:
            with self.engine.begin() as conn:
                for statement, values in ((insert(events), written), (self._upsert_users(), snapshots)):
                    for first in range(0, len(values), WRITE_CHUNK):
                        if between is not None:
                            between()
                        conn.execute(statement, values[first:first + WRITE_CHUNK])
            ok = True
        finally:
            if self.on_commit is not None:
                self.on_commit(time.perf_counter() - start, ok)
        return len(rows)

    def known_event_ids(self, event_ids: list[str]) -> set[str]:
        """Those of ``event_ids`` already stored."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(event_ids), 500):
                chunk = event_ids[start:start + 500]
                found.update(conn.execute(select(events.c.event_id).where(events.c.event_id.in_(chunk))).scalars())
        return found

    def _upsert_users(self):
        """INSERT ... ON CONFLICT (user_id) DO UPDATE, in the dialect of the engine (SQLite or PostgreSQL)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(users)
        return stmt.on_conflict_do_update(index_elements=[users.c.user_id],
                                          set_={c: stmt.excluded[c] for c in ("n_events", "last_timestamp", "state",
                                                                               "updated_at")})

    def user_events(self, user_id: str) -> list[tuple[str, int, str]]:
        """(item_id, timestamp, event_type) of the user's stored events, in arrival order."""
        return [(r["item"], r["timestamp"], r["event_type"]) for r in self.user_event_rows(user_id)]

    def user_event_rows(self, user_id: str) -> list[dict]:
        """The user's stored events as dicts (item, timestamp, event_type, event_id, received_at), in arrival order."""
        q = select(events.c.item_id, events.c.timestamp, events.c.event_type, events.c.event_id,
                   events.c.received_at).where(events.c.user_id == self.key(user_id)).order_by(events.c.id)
        with self.engine.connect() as conn:
            return [{"item": r[0], "timestamp": r[1], "event_type": r[2], "event_id": r[3], "received_at": r[4]}
                    for r in conn.execute(q)]

    def users_rows(self, user_ids: list[str]) -> dict[str, tuple[list[tuple[str, int]], dict | None]]:
        """For each of ``user_ids``: ((item_id, timestamp) of their stored events in arrival order, their row
        {"folded", "folded_n", "last_timestamp", "segment"} or None), read by ONE statement per 500 users,
        so events and folded state are consistent with each other (a retention fold is one transaction)."""
        keys = {self.key(u): u for u in user_ids}
        out: dict[str, tuple[list, dict | None]] = {u: ([], None) for u in user_ids}
        key_list = list(keys)
        for start in range(0, len(key_list), 500):
            chunk = key_list[start:start + 500]
            q = select(events.c.user_id, events.c.id, events.c.item_id, events.c.timestamp,
                       cast(null(), Text), cast(null(), Text), cast(null(), BigInteger)).where(
                events.c.user_id.in_(chunk)).union_all(
                select(users.c.user_id, literal(-1, BigInteger), cast(null(), String(256)), users.c.last_timestamp,
                       users.c.state, users.c.folded, users.c.folded_n).where(users.c.user_id.in_(chunk)))
            with self.engine.connect() as conn:
                rows = sorted(conn.execute(q), key=lambda r: (r[0], r[1]))
            for key, row_id, item, ts, state, folded, folded_n in rows:
                user = keys[key]
                if row_id == -1:
                    summary = json.loads(state) if state else None
                    out[user] = (out[user][0], {"folded": json.loads(folded) if folded else None,
                                                "folded_n": int(folded_n or 0), "last_timestamp": int(ts),
                                                "segment": summary.get("segment") if isinstance(summary, dict)
                                                else None})
                else:
                    out[user][0].append((item, int(ts)))
        return out

    def user_snapshot(self, user_id: str) -> dict | None:
        """The user's row: n_events, last_timestamp, state (a summary), folded (a scorer state or None), folded_n."""
        return self.snapshot_of_key(self.key(user_id))

    def snapshot_of_key(self, user_key: str) -> dict | None:
        """:meth:`user_snapshot` by stored key (the id, or its pseudonym)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.user_id == user_key)).mappings().first()
        if row is None:
            return None
        return {"n_events": row["n_events"], "last_timestamp": row["last_timestamp"],
                "state": json.loads(row["state"]) if row["state"] else None,
                "folded": json.loads(row["folded"]) if row["folded"] else None, "folded_n": row["folded_n"]}

    def user_ids(self) -> list[str]:
        """The stored user keys (ids, or their pseudonyms)."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(users.c.user_id)).scalars())

    # -- forgetting and retention ---------------------------------------------------------------
    def tombstone(self, user_id: str) -> str:
        """The pseudonymised id a forgotten user is remembered by (HMAC with this store's own secret)."""
        return hmac.new(self._tombstone_secret, user_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def delete_user(self, user_id: str) -> int:
        """Delete the user's events and row and record their tombstone, in one transaction; returns the events
        deleted. SQLite then overwrites the freed space (secure_delete) and empties its write-ahead log."""
        key = self.key(user_id)
        now = int(time.time() * 1000)
        with self.engine.begin() as conn:
            n = conn.execute(delete(events).where(events.c.user_id == key)).rowcount
            conn.execute(delete(users).where(users.c.user_id == key))
            digest = self.tombstone(user_id)
            if conn.execute(select(tombstones.c.digest).where(tombstones.c.digest == digest)).first() is None:
                conn.execute(insert(tombstones), [{"digest": digest, "deleted_at": now}])
        self._scrub()
        return int(n)

    def _scrub(self) -> None:
        """SQLite: checkpoint the write-ahead log into the database and truncate it (old pages gone from the WAL)."""
        if self.engine.dialect.name != "sqlite":
            return  # PostgreSQL: dead rows go at the next (auto)vacuum
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def forgotten(self, user_ids) -> set[str]:
        """Those of ``user_ids`` (service ids) that were deleted."""
        digests = {self.tombstone(str(u)): str(u) for u in user_ids}
        found: set[str] = set()
        keys = list(digests)
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                found.update(digests[d] for d in conn.execute(
                    select(tombstones.c.digest).where(tombstones.c.digest.in_(chunk))).scalars())
        return found

    def n_forgotten(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tombstones)).scalar_one())

    def old_events(self, before_ms: int) -> dict[str, list[tuple[int, str]]]:
        """Stored user key -> (row id, item_id) of their events received before ``before_ms``, in arrival
        order, up to their first later event (what retention folds)."""
        q = select(events.c.user_id, events.c.id, events.c.item_id, events.c.received_at).where(
            events.c.user_id.in_(select(events.c.user_id).where(events.c.received_at < before_ms))
        ).order_by(events.c.user_id, events.c.id)
        out: dict[str, list[tuple[int, str]]] = {}
        stopped: set[str] = set()
        with self.engine.connect() as conn:
            for user_key, row_id, item, received in conn.execute(q):
                if user_key in stopped:
                    continue
                if received >= before_ms:
                    stopped.add(user_key)
                    continue
                out.setdefault(user_key, []).append((row_id, item))
        return out

    def fold(self, *, user_key: str, last_row_id: int, state: dict, folded_n: int) -> int:
        """Keep ``state`` (the scorer state after the user's events up to ``last_row_id``) and delete those
        events, atomically; returns the events deleted."""
        with self.engine.begin() as conn:
            n = conn.execute(delete(events).where((events.c.user_id == user_key) & (events.c.id <= last_row_id))
                             ).rowcount
            conn.execute(update(users).where(users.c.user_id == user_key).values(
                folded=json.dumps(state), folded_n=folded_n))
        return int(n)

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    def all_events(self) -> list[tuple[str, str, int, str]]:
        """(user key, item_id, timestamp, event_type) of every stored event, in arrival order."""
        q = select(events.c.user_id, events.c.item_id, events.c.timestamp, events.c.event_type).order_by(events.c.id)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    # -- items ----------------------------------------------------------------------------------
    def add_items(self, new: list[StoredItem]) -> None:
        now = int(time.time() * 1000)
        with self.engine.begin() as conn:
            conn.execute(insert(items), [
                {"item_id": it.item_id, "title": it.title, "text": it.text, "category_path": json.dumps(it.category_path),
                 "vector": np.asarray(it.vector, dtype=np.float32).tobytes(), "added_at": now} for it in new])

    def added_items(self) -> list[StoredItem]:
        """Items added through the API, in the order they were added."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(items).order_by(items.c.seq)).mappings().all()
        return [StoredItem(r["item_id"], r["title"], r["text"], json.loads(r["category_path"]),
                           np.frombuffer(r["vector"], dtype=np.float32).copy()) for r in rows]

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(1)).scalar_one() == 1

    def close(self) -> None:
        self.engine.dispose()
