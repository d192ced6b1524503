"""Policy slates in the service: SlatePolicy slates with propensities, logged; POST /feedback learned from."""

# No `from __future__ import annotations` here: FastAPI reads the route annotations at runtime.
import json
import threading
import time
import uuid
from collections import OrderedDict
from enum import Enum
from typing import Annotated

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import (BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text, delete, insert,
                        select, tuple_)

from arborec.diagnostics import logger
from arborec.policy import SlatePolicy
from arborec.serve import schemas

metadata = MetaData()

#: one row per served policy slate: what off-policy evaluation and the feedback need
served_slates = Table(
    "policy_slates", metadata,
    Column("request_id", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("policy_version", String(200), nullable=False),
    Column("items", Text, nullable=False),  # JSON: item ids in position order
    Column("nodes", Text, nullable=False),  # JSON: level-1 node of each position
    Column("propensities", Text, nullable=False),  # JSON: P(item at that position)
    Column("inclusion", Text, nullable=False),  # JSON: P(item anywhere in the slate)
    Column("served_at", BigInteger, nullable=False),  # unix ms
)

#: one row per acknowledged feedback event (idempotent on request, item, kind)
feedback = Table(
    "policy_feedback", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("reward", Float, nullable=True),  # what the policy learned from it (None: logged only)
    Column("timestamp", BigInteger, nullable=False),  # client's, unix seconds
    Column("received_at", BigInteger, nullable=False),  # unix ms
    Index("ux_policy_feedback", "request_id", "item_id", "kind", unique=True),
)


# Of a 10-slot slate, the slots the model's best items take before the interests share the rest (scaled for
# other sizes; they give way as feedback comes): chosen on validation on Amazon Beauty and MovieLens-1M alike
# (benchmarks/results/policy_*.md), the most interest coverage with NDCG@10 within 3% of greedy top-k.
SERVED_HEAD = 7


class FeedbackKind(str, Enum):
    click = "click"
    purchase = "purchase"
    skip = "skip"  # shown, no interaction before the client's timeout
    rating = "rating"  # value 1..5
    dwell = "dwell"  # value in seconds; logged, not learned from


class FeedbackIn(BaseModel):
    """What the user did with one item of a served slate (``request_id`` from the recommendations answer)."""

    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    item: schemas.Identifier
    kind: FeedbackKind
    value: float | None = Field(None, ge=0, le=1e6, description="rating 1..5, or dwell seconds")
    timestamp: int = Field(ge=schemas.MIN_TIMESTAMP, le=schemas.MAX_TIMESTAMP, description="unix seconds")


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feedback: list[FeedbackIn] = Field(min_length=1, max_length=1000)


class FeedbackAccepted(BaseModel):
    accepted: int = Field(description="feedback written (durably) and learned from")
    duplicates: int = Field(description="already acknowledged before: ignored")
    events: int = Field(description="clicks and purchases also ingested as events (the user's state moved)")


class PolicyRecommendation(schemas.Recommendation):
    position: int | None = Field(None, description="policy slates: 0-based position")
    propensity: float | None = Field(None, description="policy slates: P(this item at this position)")
    inclusion: float | None = Field(None, description="policy slates: P(this item anywhere in the slate)")


class PolicyRecommendations(schemas.Recommendations):
    """``Recommendations``, with the slate's request id, policy version and propensities when policy=slate."""

    policy: str = Field("model", description="model (greedy by score) | slate (interest-aware policy)")
    request_id: str | None = Field(None, description="policy slates: give it back with POST /feedback")
    policy_version: str | None = None
    items: list[PolicyRecommendation]


def reward_of(kind: str, value: float | None) -> float | None:
    """The policy's reward for a feedback kind: click/purchase 1, skip 0, rating (value - 1) / 4, dwell none."""
    if kind in ("click", "purchase"):
        return 1.0
    if kind == "skip":
        return 0.0
    if kind == "rating" and value is not None:
        return float(np.clip((value - 1.0) / 4.0, 0.0, 1.0))
    return None


class SlateServing:
    """Serves :class:`SlatePolicy` slates for an :class:`InterestService` and learns from their feedback.

    Served slates and feedback go to two tables of the service's store (``policy_slates``,
    ``policy_feedback``), committed before the answer; at start the policy relearns every stored
    feedback, so what it learned survives restarts. Clicks and purchases are also ingested as events,
    so the user's interest state moves at once.
    """

    REMEMBERED = 100_000

    def __init__(self, service, policy: SlatePolicy | None = None):
        self.service = service
        self.engine = service.store.engine
        metadata.create_all(self.engine)
        self.policy = (policy or SlatePolicy(head=SERVED_HEAD)).fit(service.catalog.tree)
        self._lock = threading.Lock()
        self._served_to: OrderedDict[str, str] = OrderedDict()  # request id -> user id, the latest REMEMBERED
        self._replay()

    def _replay(self) -> None:
        q = (select(feedback.c.user_id, feedback.c.request_id, feedback.c.position, feedback.c.reward,
                    served_slates.c.nodes)
             .join(served_slates, served_slates.c.request_id == feedback.c.request_id)
             .where(feedback.c.reward.is_not(None)).order_by(feedback.c.id))
        n = 0
        with self.engine.connect() as conn:
            for user, request_id, position, reward, nodes in conn.execute(q):
                self.policy.update(user, [json.loads(nodes)[position]], [reward], slate_id=request_id)
                n += 1
        if n:
            logger.info("slate policy: relearned %d stored feedback events", n)

    def recommend(self, user_id: str, k: int, explain: bool = True) -> dict:
        """A policy slate for a known user (logged, with propensities); the service's cold start otherwise."""
        service = self.service
        record = service.user(user_id)
        if record is None or record.n_events == 0 or record.interests is None:
            out = service.recommend(user_id, k=k, explain=explain)
            return {**out, "policy": "slate"}
        scores = service.scorer.scores(record.state)
        seen = service.scorer.recent(record.state)
        key = service.store.key(user_id)  # what the store keeps: the id, or its keyed hash (pseudonymised)
        with self._lock:  # the policy's random generator and counts
            slate = self.policy.slate(key, record.interests["long"], record.interests["short"], scores,
                                      exclude=seen, k=k)
        from arborec.serve.service import _normalised

        profile = _normalised(record.interests) if explain else None
        items = []
        for pos, (item, score) in enumerate(zip(slate.items, slate.scores)):
            described = service._describe(int(item), float(score), profile, seen if explain else None)
            items.append({**described, "position": pos, "propensity": round(float(slate.propensities[pos]), 6),
                          "inclusion": round(float(slate.inclusion[pos]), 6)})
        request_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(insert(served_slates), [{
                "request_id": request_id, "user_id": key, "policy_version": slate.version,
                "items": json.dumps([it["item"] for it in items]), "nodes": json.dumps(slate.nodes.tolist()),
                "propensities": json.dumps(slate.propensities.tolist()),
                "inclusion": json.dumps(slate.inclusion.tolist()), "served_at": int(time.time() * 1000)}])
        self._served_to[request_id] = user_id  # feedback ingests clicks under the id the client knows
        while len(self._served_to) > self.REMEMBERED:
            self._served_to.popitem(last=False)
        return {"user": user_id, "known": True, "strategy": "model", "segment": record.segment, "items": items,
                "policy": "slate", "request_id": request_id, "policy_version": slate.version}

    def feedback(self, rows: list) -> dict:
        """Store (committed), learn from, and for clicks and purchases ingest, feedback on served slates.

        Raises LookupError naming an unknown request id or an item the slate did not show (nothing written).
        """
        ids = sorted({f.request_id for f in rows})
        with self.engine.connect() as conn:
            found = {r.request_id: r for r in conn.execute(select(served_slates).where(
                served_slates.c.request_id.in_(ids)))}
        missing = [i for i in ids if i not in found]
        if missing:
            raise LookupError(f"unknown request_id(s): {', '.join(missing[:5])} (use the request_id of a "
                              "policy=slate answer)")
        prepared = []
        for f in rows:
            slate = found[f.request_id]
            items = json.loads(slate.items)
            if f.item not in items:
                raise LookupError(f"item {f.item!r} was not in slate {f.request_id}")
            pos = items.index(f.item)
            prepared.append((f, slate, pos, reward_of(f.kind.value, f.value)))
        now = int(time.time() * 1000)
        with self._lock:
            with self.engine.begin() as conn:
                keys = [(f.request_id, f.item, f.kind.value) for f, _, _, _ in prepared]
                done = set(tuple(r) for r in conn.execute(select(
                    feedback.c.request_id, feedback.c.item_id, feedback.c.kind).where(
                    tuple_(feedback.c.request_id, feedback.c.item_id, feedback.c.kind).in_(keys))))
                fresh, seen_keys = [], set()
                for entry, key in zip(prepared, keys):
                    if key not in done and key not in seen_keys:
                        fresh.append(entry)
                        seen_keys.add(key)
                if fresh:
                    conn.execute(insert(feedback), [{
                        "request_id": f.request_id, "user_id": slate.user_id, "item_id": f.item, "position": pos,
                        "kind": f.kind.value, "value": f.value, "reward": reward, "timestamp": f.timestamp,
                        "received_at": now} for f, slate, pos, reward in fresh])
            for f, slate, pos, reward in fresh:  # committed: now learn
                if reward is not None:
                    self.policy.update(slate.user_id, [json.loads(slate.nodes)[pos]], [reward], slate_id=f.request_id)
        # the stored user is the service's id, unless ids are pseudonymised: then only recent slates know it
        pseudonymised = self.service.store.key.enabled
        events = [schemas.EventIn(user=self._served_to.get(f.request_id) or slate.user_id, item=f.item,
                                  timestamp=f.timestamp, event_type=schemas.EventType(f.kind.value))
                  for f, slate, _, _ in fresh if f.kind.value in ("click", "purchase")
                  and (f.request_id in self._served_to or not pseudonymised)]
        if events:
            self.service.ingest(events)
        return {"accepted": len(fresh), "duplicates": len(rows) - len(fresh), "events": len(events)}

    def forget(self, user_id: str) -> int:
        """Delete the user's served slates and feedback and what the policy learned about them; returns the
        slates deleted (called by ``DELETE /users/{id}``)."""
        key = self.service.store.key(user_id)
        with self._lock:
            with self.engine.begin() as conn:
                ids = list(conn.execute(select(served_slates.c.request_id).where(served_slates.c.user_id == key))
                           .scalars())
                conn.execute(delete(feedback).where(feedback.c.user_id == key))
                conn.execute(delete(served_slates).where(served_slates.c.user_id == key))
            self.policy.forget(key)
            for request_id in ids:
                self._served_to.pop(request_id, None)
        self.service.store._scrub()
        return len(ids)

    def logged(self, user_id: str | None = None) -> list[dict]:
        """Served slates (oldest first) with their feedback: what off-policy evaluation reads."""
        q = select(served_slates).order_by(served_slates.c.served_at)
        if user_id is not None:
            q = q.where(served_slates.c.user_id == self.service.store.key(user_id))
        with self.engine.connect() as conn:
            slates = [dict(r._mapping) for r in conn.execute(q)]
            fb = [dict(r._mapping) for r in conn.execute(select(feedback).order_by(feedback.c.id))]
        by_request: dict[str, list] = {}
        for row in fb:
            by_request.setdefault(row["request_id"], []).append(row)
        for s in slates:
            for key in ("items", "nodes", "propensities", "inclusion"):
                s[key] = json.loads(s[key])
            s["feedback"] = by_request.get(s["request_id"], [])
        return slates


def add_slate_routes(app: FastAPI, service, write_key, policy: SlatePolicy | None = None) -> SlateServing:
    """Add ``POST /feedback`` (behind the ``write_key`` dependency, as POST /events) and put the
    :class:`SlateServing` the recommendations route uses for ``policy=slate`` on ``app.state.slates``."""
    slates = SlateServing(service, policy)
    app.state.slates = slates

    @app.post("/feedback", response_model=FeedbackAccepted, dependencies=[write_key],
              responses={code: {"model": schemas.ErrorOut} for code in (401, 403, 404, 413, 422, 429)},
              summary="feedback on a served policy slate; durable and learned from when acknowledged")
    def post_feedback(body: FeedbackBatch | FeedbackIn) -> FeedbackAccepted:
        rows = body.feedback if isinstance(body, FeedbackBatch) else [body]
        try:
            out = slates.feedback(rows)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        return FeedbackAccepted(**out)

    return slates
