"""Explanations: which of a user's interests a recommended item serves, and which history items support it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from arborec.diagnostics import ConfigError
from arborec.hierarchy import InterestTree
from arborec.profiles._profile import SHORT_WINDOW, UserProfile


@dataclass
class Explanation:
    """Why ``item`` fits a user.

    ``level`` is the deepest level (1-based) at which the item's node carries weight in the user's
    profile (0: none does, the item is outside the user's interests). ``weight`` is the combined
    weight of that node, ``time_scale`` says whether the long-term or the short-term interest holds
    more of it, and ``support`` lists the user's history items under that node, most recent first.
    """

    item: int
    level: int
    node: int | None
    path: list[str]
    weight: float
    long: float
    short: float
    time_scale: str  # "long", "short" or "none"
    support: list[int] = field(default_factory=list)
    item_path: list[str] = field(default_factory=list)
    n_support: int = 0  # the user's history items under the node (``support`` shows at most a few)
    n_history: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def reason(self, short_window: int = SHORT_WINDOW) -> str:
        """The reason in plain words, claiming only what the numbers hold (see :func:`reason_text`)."""
        return reason_text(self.path or self.item_path, self.long, self.short, self.n_support, self.n_history,
                           short_window, matched=self.level > 0)

    def __str__(self) -> str:
        if self.level == 0:
            return f"item {self.item} ({' > '.join(self.item_path)}) is outside this user's interests"
        return (f"item {self.item} serves the {self.time_scale}-term interest {' > '.join(self.path)} "
                f"(level {self.level}, weight {self.weight:.2f}), supported by items {self.support}")


def explain(profile: UserProfile | dict, item: int, tree: InterestTree, history=None, max_support: int = 5,
            min_weight: float = 0.05) -> Explanation:
    """Explain one recommended ``item`` (from any recommender) by ``profile``'s interests.

    ``profile`` is a :class:`UserProfile` (from :class:`ProfileBuilder` or a model's distributions)
    or its JSON dict.
    ``history`` (item indices, oldest first) defaults to the profile's own history. The chosen
    node is the deepest on the item's path under which the user has history items (with no
    history: the deepest holding at least ``min_weight``). Supporting items are the history items
    under that node, most recent first, without repeats.
    """
    if isinstance(profile, dict):  # a profile read back from JSON (UserProfile.to_dict)
        profile = UserProfile.from_dict(profile)
    if not 0 <= int(item) < tree.n_items:
        raise ConfigError(f"item={item!r} is not allowed: expected an item index in [0, {tree.n_items})")
    if profile.n_levels != tree.n_levels:
        raise ConfigError(f"the profile has {profile.n_levels} levels, the tree {tree.n_levels}")
    history = np.asarray(profile.history if history is None else history, dtype=np.int64)
    item = int(item)
    path = tree.path(item)
    for lv in range(tree.n_levels - 1, -1, -1):
        node = path[lv]
        weight = float(profile.combined[lv][node])
        mine = history[tree.codes[history, lv] == node] if len(history) else history
        # With a history, an interest is a node the user has items under; without one (a model's
        # profile of a new user), a node holding at least min_weight.
        if (len(history) and not len(mine)) or (not len(history) and weight < min_weight) or weight <= 0:
            continue
        long, short = float(profile.long[lv][node]), float(profile.short[lv][node])
        support = list(dict.fromkeys(int(i) for i in mine[::-1]))[:max_support]
        return Explanation(item=item, level=lv + 1, node=node, path=tree.path_labels(item)[:lv + 1], weight=weight,
                           long=long, short=short, time_scale="short" if short > long else "long", support=support,
                           item_path=tree.path_labels(item), n_support=len(set(mine.tolist())),
                           n_history=len(history))
    return Explanation(item=item, level=0, node=None, path=[], weight=0.0, long=0.0, short=0.0, time_scale="none",
                       support=[], item_path=tree.path_labels(item), n_history=len(history))


RECENT_MIN = 0.3  # "a recent interest": at least this share of the short-term window, and more than long term
LASTING_MIN_ITEMS = 3  # "one of your lasting interests": at least this many history items under the node
LASTING_MIN_SHARE = 0.1  # ... and at least this share of all the user's events


def readable_interest(path: list[str]) -> str:
    """A tree path as a person reads it: a learned node's label "Drama · drama, romance, war" keeps its name,
    repeated labels are written once, and keyword-list labels in between are skipped
    ("Drama > romance, love, affair"); category paths such as "Makeup > Lips > Lip Gloss" stay whole."""
    parts = [p.split(" · ")[0] if i == 0 else p for i, p in enumerate(path)]
    parts = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
    if len(parts) > 2 and any(", " in p for p in parts[1:]):
        parts = [parts[0], parts[-1]]
    return " > ".join(parts)


def reason_text(path: list[str], long: float, short: float, n_items: int, n_history: int = 0,
                short_window: int = SHORT_WINDOW, matched: bool = True) -> str:
    """One readable sentence saying why an item fits a user, worded from what the numbers support.

    ``long`` / ``short``: the share of the user's events (all of them / the last ``short_window``)
    under the interest ``path``; ``n_items``: how many of the user's items sit under it. "Recent
    interest" needs ``RECENT_MIN`` of the recent events; "lasting interest" needs ``LASTING_MIN_ITEMS``
    items and ``LASTING_MIN_SHARE`` of all events; below both it says how many items relate, and an
    item outside every interest is called new. Shares are of events the user interacted with (never
    "liked": a view is not a like).
    """
    where = readable_interest(path)
    if not matched or n_items == 0 and max(long, short) <= 0:
        return f"something new for you, in {where}"
    recent = min(short_window, n_history) if n_history else short_window
    if short >= RECENT_MIN and short > long:
        return f"a recent interest: {round(short * recent)} of your last {recent} events are in {where}"
    if n_items >= LASTING_MIN_ITEMS and long >= LASTING_MIN_SHARE:
        return f"one of your lasting interests: {long:.0%} of your events are in {where}"
    return f"related to {n_items} item{'s' if n_items != 1 else ''} you interacted with in {where}"
