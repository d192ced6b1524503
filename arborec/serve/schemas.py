"""Typed request and response models of the API (requests validated here, responses shaped here)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: user and item ids: printable, no spaces or slashes (they appear in URLs)
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@~+=-]+$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]

#: 2000-01-01 .. 2100-01-01, unix seconds
MIN_TIMESTAMP, MAX_TIMESTAMP = 946_684_800, 4_102_444_800


class EventType(str, Enum):
    view = "view"
    click = "click"
    cart = "cart"
    purchase = "purchase"
    rating = "rating"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ---------------------------------------------------------------------------------------
class EventIn(_Strict):
    """One interaction: ``user`` did ``event_type`` on ``item`` at ``timestamp`` (unix seconds)."""

    user: Identifier
    item: Identifier
    timestamp: int = Field(ge=MIN_TIMESTAMP, le=MAX_TIMESTAMP, description="unix seconds")
    event_type: EventType = EventType.view
    event_id: Identifier | None = Field(None, description="the client's id of this event: posting it again "
                                                          "(a retry) is acknowledged but stored and applied once")


class EventBatch(_Strict):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class ItemIn(_Strict):
    """A new item: its text is encoded, it is placed in the interest tree and is recommendable at once."""

    item: Identifier
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: Annotated[str, StringConstraints(max_length=5000)] = ""
    brand: Annotated[str, StringConstraints(max_length=200)] = ""
    category_path: list[Label] = Field(default_factory=list, max_length=10,
                                       description="root first, e.g. ['Makeup', 'Lips', 'Lipstick']")


class ItemBatch(_Strict):
    items: list[ItemIn] = Field(min_length=1, max_length=1000)


# -- responses --------------------------------------------------------------------------------------
class EventsAccepted(BaseModel):
    accepted: int = Field(description="events written (durably) and applied")
    users: list[str] = Field(description="users whose state was updated")


class InterestOf(BaseModel):
    """The user's interest a recommendation serves: a node of the tree and its weight in the profile."""

    level: int
    node: int
    path: list[str]
    long_share: float = Field(description="share of the user's long-term events under this node")
    short_share: float = Field(description="share of the user's recent events under this node")


class ItemSummary(BaseModel):
    """An item as the page shows it: id (what POST /events takes), title and interest path."""

    item: str
    title: str
    path: list[str] = Field(description="the item's interest path, coarse to fine")


class RecentEvents(BaseModel):
    """The user's most recent items, newest first (what the short-term interest is counted on)."""

    user: str
    n_events: int
    items: list[ItemSummary]


class ItemSearch(BaseModel):
    """Items whose title or id contains the query (case-insensitive), most used first."""

    query: str
    items: list[ItemSummary]


class Recommendation(BaseModel):
    item: str
    title: str
    score: float
    path: list[str] = Field(description="the item's interest path, coarse to fine")
    interest: InterestOf | None = None
    because: str | None = Field(None, description="the most similar item the user interacted with")
    reason: str | None = None


class Recommendations(BaseModel):
    user: str
    known: bool = Field(description="false: cold start (no events for this user)")
    strategy: str = Field(description="model | popular-in-segments (popular items spread over the top-level "
                                      "interests) | popular-in-segment (of a user segment) | stated-interest")
    segment: int | None = Field(None, description="the user's segment (see GET /segments), or the one asked for")
    items: list[Recommendation]


class InterestNode(BaseModel):
    level: int
    node: int
    parent: int = Field(description="index of the parent node at level - 1 (0 at level 1: the root)")
    label: str
    long: float = Field(description="share of long-term events under this node")
    short: float = Field(description="share of the recent events under this node")


class Interests(BaseModel):
    user: str
    known: bool
    n_events: int
    short_window: int
    segment: int | None = Field(None, description="the user's segment (see GET /segments); none without events")
    segment_label: str | None = None
    levels: list[str] = Field(description="level names, coarse to fine")
    nodes: list[InterestNode]


class ItemsAdded(BaseModel):
    added: int
    items: list[dict] = Field(description="each new item with the interest path it was placed on")


class SegmentInterest(BaseModel):
    """A node of the tree strong in a segment: its path and its share of the segment's mean profile."""

    path: list[str]
    level: int
    share: float


class Segment(BaseModel):
    """A group of users with similar interest profiles (a k-means cluster of their profiles)."""

    segment: int
    label: str = Field(description="its strongest interest paths, with their shares of its mean profile")
    n_users: int = Field(description="users in it now (every user with events is in one)")
    share: float = Field(description="n_users / all users in segments")
    interests: list[SegmentInterest] = Field(description="its top nodes, at level 1 and its most telling level")
    representatives: list[str] = Field(description="users nearest its centre (among those it was fitted on)")
    top_items: list[str] = Field(description="the items its users used most (the cold start ?segment=)")


class Segments(BaseModel):
    """User segments (arborec.profiles.Segmenter), fitted at start on the users known then."""

    n_users: int = Field(description="users in a segment: every user with events (0 when none were fitted)")
    n_segments: int
    method: str
    fitted_on: int = Field(description="users the segments were fitted on (a seeded sample)")
    silhouette: float | None = Field(None, description="of the fitted users' profiles, in [-1, 1]")
    levels: list[int] = Field(description="tree levels whose distributions were clustered (1 = coarsest)")
    segments: list[Segment]


class Forgotten(BaseModel):
    """What DELETE /users/{id} removed."""

    user: str
    forgotten: bool
    stored_events_deleted: int = Field(description="events deleted from the store")
    batch_events_dropped: int = Field(description="events of the batch log (the served model's data) no longer "
                                                  "used for this user; a tombstone keeps them out after a restart")
    slates_deleted: int = Field(0, description="policy slates served to the user (and their feedback) deleted")


class ExportedEvent(BaseModel):
    item: str
    timestamp: int = Field(description="when it happened (unix seconds, as sent)")
    event_type: str
    event_id: str | None = None
    received_at: int = Field(description="when the service stored it (unix ms)")


class UserExport(BaseModel):
    """Everything the service holds about one user."""

    user: str
    known: bool
    n_events: int = Field(description="events in the user's state (batch log, folded and stored)")
    events: list[ExportedEvent] = Field(description="the raw events in the store, in arrival order")
    batch_history: list[str] = Field(description="items of the user in the batch log the model was trained on")
    folded_events: int = Field(description="events removed by retention after being folded into the state")
    stored_summary: dict | None = Field(None, description="the summary of interests kept in the store")
    segment: int | None = None
    segment_label: str | None = None
    interests: list[InterestNode]
    pseudonymised: bool = Field(description="whether the store keeps the user id as a keyed hash")
    slates: list[dict] = Field(default_factory=list, description="policy slates served to the user, with "
                                                                  "their propensities and the user's feedback")


class ErrorOut(BaseModel):
    """What every 4xx answer carries: a message, and for invalid requests where each problem is."""

    detail: str
    errors: list[dict] | None = None


class Health(BaseModel):
    status: str
    store: str
    n_items: int
    n_users_live: int
    scorer: str
    retrieval: str
    events: str = Field("in-process", description="where events are stored and applied: 'event process', "
                        "'in-process', or 'in-process (event process stopped)' (then status is 'degraded')")
