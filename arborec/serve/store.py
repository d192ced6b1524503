"""The durable store (SQLAlchemy Core): events, users and added items, in SQLite (WAL) or PostgreSQL."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import (BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, create_engine,
                        event, func, insert, select)
from sqlalchemy.engine import Engine

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(128), nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # when the event happened (unix seconds, client's)
    Column("event_type", String(32), nullable=False),
    Column("received_at", BigInteger, nullable=False),  # when the service acknowledged it (unix ms)
    Index("ix_events_user", "user_id", "id"),
)

users = Table(
    "users", metadata,
    Column("user_id", String(128), primary_key=True),
    Column("n_events", BigInteger, nullable=False),
    Column("last_timestamp", BigInteger, nullable=False),
    Column("state", Text, nullable=True),  # JSON snapshot of the user's interests at the last event
    Column("updated_at", BigInteger, nullable=False),
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

    def __init__(self, url: str, sqlite_synchronous: str = "NORMAL"):
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous)
        metadata.create_all(self.engine)

    # -- events and users ---------------------------------------------------------------------
    def add_events(self, *, rows: list[dict], user_states: dict[str, dict]) -> int:
        """Insert event rows (user_id, item_id, timestamp, event_type) and upsert the users' snapshots, atomically.

        Returns the number of events written. When this returns, the transaction is committed.
        """
        now = int(time.time() * 1000)
        snapshots = [{"user_id": user_id, "n_events": snap["n_events"], "last_timestamp": snap["last_timestamp"],
                      "state": json.dumps(snap.get("state")), "updated_at": now}
                     for user_id, snap in user_states.items()]
        with self.engine.begin() as conn:
            conn.execute(insert(events), [{**r, "received_at": now} for r in rows])
            conn.execute(self._upsert_users(), snapshots)
        return len(rows)

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
        q = select(events.c.item_id, events.c.timestamp, events.c.event_type).where(
            events.c.user_id == user_id).order_by(events.c.id)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]

    def user_snapshot(self, user_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.user_id == user_id)).mappings().first()
        if row is None:
            return None
        return {"n_events": row["n_events"], "last_timestamp": row["last_timestamp"],
                "state": json.loads(row["state"]) if row["state"] else None}

    def user_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(users.c.user_id)).scalars())

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    def all_events(self) -> list[tuple[str, str, int, str]]:
        """(user_id, item_id, timestamp, event_type) of every stored event, in arrival order."""
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
