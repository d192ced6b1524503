"""Explanations: which of a user's interests a recommended item serves, and which history items support it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from arborec.diagnostics import ConfigError
from arborec.hierarchy import InterestTree
from arborec.profiles._profile import UserProfile


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

    def to_dict(self) -> dict:
        return asdict(self)

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
                           item_path=tree.path_labels(item))
    return Explanation(item=item, level=0, node=None, path=[], weight=0.0, long=0.0, short=0.0, time_scale="none",
                       support=[], item_path=tree.path_labels(item))
