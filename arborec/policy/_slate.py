"""`SlatePolicy`: a slate's k slots shared among a user's level-1 interest nodes, Thompson sampling, feedback."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arborec.diagnostics import ConfigError, NotFittedError, check_param
from arborec.hierarchy import InterestTree

CTR_PSEUDO_SLOTS = 20.0  # weight of prior_ctr in the global click-rate estimate (in shown slots)


@dataclass
class Slate:
    """A served slate: ``items[p]`` at position ``p``, shown with probability ``propensities[p]`` there.

    ``inclusion[p]`` is the probability that ``items[p]`` was anywhere in the slate; ``nodes[p]`` its
    level-1 node. ``version`` names the policy and its parameters (what the feedback is tied to).
    """

    user: object
    items: np.ndarray  # (n,) int64, n <= k
    propensities: np.ndarray  # (n,) float64: P(items[p] at position p)
    inclusion: np.ndarray  # (n,) float64: P(items[p] in the slate)
    nodes: np.ndarray  # (n,) int64: level-1 node of each item
    version: str
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) the model's scores of the items


class SlatePolicy:
    """An interest-aware slate policy whose actions are the nodes of the interest tree.

    A slate of ``k`` items is an allocation of its slots to the user's level-1 nodes: node j's r-th
    slot is worth ``theta_j / (r + 1) ** spread`` and the k most valuable slots are taken (``spread``
    = 1 is proportional representation, the D'Hondt rule; 0 gives every slot to the strongest node;
    larger spreads the slots more evenly). Inside a level-1 node its slots are shared the same way
    among its level-2 children, by the model's level-2 distribution, and each child's slots go to
    its best items by the model's scores. The chosen items are shown in the order of their scores.
    With ``head`` = h > 0 the first h slots are the model's h best-scored items (what greedy top-k shows
    first) and only the other k - h are shared as above, each node's count starting at the head slots it
    already has: the top of the list stays the model's, the rest goes to the interests the head left out
    (h = 0: every slot shared; h = k: greedy top-k). The head shrinks as the user's feedback grows
    (:meth:`head_slots`), like the weight of the model's prior in ``theta``.

    ``theta_j`` is node j's click rate per shown slot, for this user: a Beta posterior whose prior
    mean is ``ctr_ * q_j / max(q)``, with ``q`` the model's level-1 interest (see :meth:`interest`:
    the level heads' long- and short-term distributions and the nodes' shares of the next-item
    distribution, mixed with ``floor`` of the uniform distribution so that every node keeps a chance)
    and ``ctr_`` the click rate per slot over all feedback; ``prior_strength``
    pseudo-slots weigh the prior against the user's own (decayed) clicks and skips on that node. With
    ``explore`` a slate is drawn by Thompson sampling (one draw of every theta); without it the
    posterior means are used and the policy is deterministic (propensity 1).

    Propensities have no closed form (the allocation of a Thompson draw): they are estimated by
    Monte Carlo over ``n_draws`` draws of the posterior (the served draw among them), so the
    smallest propensity reported is ``1 / n_draws``.

    Parameters
    ----------
    k : slots per slate
    explore : Thompson sampling (True) or posterior means (False)
    prior_strength : pseudo-slots of the prior, > 0 (smaller: more exploration, faster learning)
    long_weight : weight of the long-term distribution in q, in [0, 1]
    score_weight : weight in q of the nodes' shares of the model's next-item distribution, in [0, 1]
    spread : exponent of the slot values, >= 0
    head : slots given to the best-scored items before the interests share the rest, in [0, k]
    floor : share of the uniform distribution mixed into q, in [0, 1)
    memory : factor applied to a user's counts before each update, in (0, 1] (forgets, follows drift)
    prior_ctr : click rate per slot assumed before any feedback, in (0, 1)
    n_draws : Monte Carlo draws for the propensities (explore only), >= 1
    seed : random seed of the draws

    Attributes after ``fit``
    ------------------------
    tree_ : InterestTree, n_nodes_ : level-1 nodes, counts_ : {user: (clicks (J,), shows (J,))},
    last_slate_ : {user: id of the slate last learned from},
    clicks_, slots_ : feedback totals, version_ : str
    """

    def __init__(self, k: int = 10, explore: bool = True, prior_strength: float = 20.0, long_weight: float = 0.5,
                 score_weight: float = 0.5, spread: float = 1.0, floor: float = 0.05, memory: float = 0.9,
                 prior_ctr: float = 0.1, head: int = 0,
                 n_draws: int = 200, seed: int = 0):
        self.k = k
        self.head = head
        self.explore = explore
        self.prior_strength = prior_strength
        self.long_weight = long_weight
        self.score_weight = score_weight
        self.spread = spread
        self.floor = floor
        self.memory = memory
        self.prior_ctr = prior_ctr
        self.n_draws = n_draws
        self.seed = seed

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, tree: InterestTree) -> "SlatePolicy":
        """Validate the parameters and start with no feedback over ``tree``'s level-1 nodes."""
        check_param("k", self.k, isinstance(self.k, (int, np.integer)) and self.k >= 1, "an integer >= 1")
        check_param("prior_strength", self.prior_strength, self.prior_strength > 0, "a float > 0")
        check_param("long_weight", self.long_weight, 0 <= self.long_weight <= 1, "a float in [0, 1]")
        check_param("score_weight", self.score_weight, 0 <= self.score_weight <= 1, "a float in [0, 1]")
        check_param("spread", self.spread, self.spread >= 0, "a float >= 0")
        check_param("floor", self.floor, 0 <= self.floor < 1, "a float in [0, 1)")
        check_param("memory", self.memory, 0 < self.memory <= 1, "a float in (0, 1]")
        check_param("prior_ctr", self.prior_ctr, 0 < self.prior_ctr < 1, "a float in (0, 1)")
        check_param("head", self.head, isinstance(self.head, (int, np.integer)) and 0 <= self.head <= self.k,
                    f"an integer in [0, k={self.k}]")
        check_param("n_draws", self.n_draws, isinstance(self.n_draws, (int, np.integer)) and self.n_draws >= 1,
                    "an integer >= 1")
        self.tree_ = tree
        self.n_nodes_ = tree.level_sizes[0]
        self.counts_: dict = {}
        self.last_slate_: dict = {}
        self.clicks_, self.slots_ = 0.0, 0.0
        self.rng_ = np.random.default_rng(self.seed)
        mode = "ts" if self.explore else "mean"
        self.version_ = (f"slate-{mode}-v1:s{self.prior_strength:g}-lw{self.long_weight:g}"
                         f"-sw{self.score_weight:g}-sp{self.spread:g}"
                         f"-f{self.floor:g}-m{self.memory:g}" + (f"-h{self.head}" if self.head else ""))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "tree_"):
            raise NotFittedError("this SlatePolicy is not fitted yet: call fit(tree) first")

    # -- the posterior -------------------------------------------------------------------------
    @property
    def ctr_(self) -> float:
        """Click rate per shown slot over all feedback, shrunk towards ``prior_ctr``."""
        return (self.clicks_ + self.prior_ctr * CTR_PSEUDO_SLOTS) / (self.slots_ + CTR_PSEUDO_SLOTS)

    def interest(self, long: list[np.ndarray], short: list[np.ndarray], scores=None, exclude=None,
                 level: int = 1) -> np.ndarray:
        """(n_nodes,) the distribution q at ``level`` (1-based) the slots are shared by, summing to one:
        ``score_weight`` x each node's share of softmax(scores) over the allowed items (when scores are
        given) + the rest x (``long_weight`` x long + the rest x short), mixed with ``floor`` of uniform."""
        def norm(p):
            p = np.clip(np.asarray(p, dtype=np.float64), 0, None)
            return p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))

        q = self.long_weight * norm(long[level - 1]) + (1 - self.long_weight) * norm(short[level - 1])
        if scores is not None and self.score_weight > 0:
            n = min(len(scores), self.tree_.n_items)
            s = np.asarray(scores, dtype=np.float64)[:n].copy()
            if exclude is not None and len(exclude):
                exclude = np.asarray(exclude, dtype=np.int64)
                s[exclude[exclude < n]] = -np.inf
            p = np.exp(s - s.max())
            mass = np.bincount(self.tree_.codes[:n, level - 1], weights=p, minlength=len(q))
            q = self.score_weight * norm(mass) + (1 - self.score_weight) * q
        return (1 - self.floor) * q + self.floor / len(q)

    def posterior(self, user, long: list[np.ndarray], short: list[np.ndarray], scores=None,
                  exclude=None) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, beta), each (n_nodes,): the Beta posterior of each level-1 node's click rate for ``user``."""
        self._check_fitted()
        q = self.interest(long, short, scores, exclude)
        mean = np.clip(self.ctr_ * q / q.max(), 1e-6, 0.99)
        clicks, shows = self.counts_.get(user, (np.zeros(self.n_nodes_), np.zeros(self.n_nodes_)))
        s = self.prior_strength
        return s * mean + clicks, s * (1 - mean) + np.maximum(shows - clicks, 0.0)

    # -- slates --------------------------------------------------------------------------------
    def node_lists(self, scores: np.ndarray, long: list[np.ndarray], short: list[np.ndarray],
                   exclude=None, candidates=None, k: int | None = None) -> list[np.ndarray]:
        """For each level-1 node, the ordered items its first 1, 2, ..., k slots take (at most k).

        Its slots go to its level-2 children by the same slot values (level-2 distribution, fixed),
        each child's slots to its best-scored items; a shorter list means too few candidates.
        """
        self._check_fitted()
        return self._node_lists(self._ranked(scores, exclude, candidates), scores, long, short, exclude, k)

    def _ranked(self, scores: np.ndarray, exclude=None, candidates=None) -> np.ndarray:
        """The allowed items (``candidates`` or all, without ``exclude``), best-scored first."""
        n = min(len(scores), self.tree_.n_items)  # a served catalogue may have grown between the two reads
        allowed = np.ones(n, dtype=bool) if candidates is None else np.zeros(n, dtype=bool)
        if candidates is not None:
            candidates = np.asarray(candidates, dtype=np.int64)
            allowed[candidates[candidates < n]] = True
        if exclude is not None and len(exclude):
            exclude = np.asarray(exclude, dtype=np.int64)
            allowed[exclude[exclude < n]] = False
        order = np.flatnonzero(allowed)
        return order[np.argsort(-np.asarray(scores)[order], kind="stable")]

    def _node_lists(self, order: np.ndarray, scores: np.ndarray, long, short, exclude, k: int | None):
        """:meth:`node_lists` from ``order``, the allowed items best first (``exclude``: what the level-2
        distribution leaves out)."""
        tree, k = self.tree_, k or self.k
        scores = np.asarray(scores)[:min(len(scores), tree.n_items)]
        fine = 1 if tree.n_levels >= 2 else 0
        group = tree.codes[order, fine]
        by_group = np.argsort(group, kind="stable")  # grouped by node, best first inside
        g = group[by_group]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        tops = {int(g[s]): order[by_group[s:e]][:k] for s, e in zip(starts, np.r_[starts[1:], len(g)])}
        if fine == 0:
            return [tops.get(j, np.zeros(0, np.int64)) for j in range(self.n_nodes_)]
        q2 = self.interest(long, short, scores, exclude, level=2)
        parents = tree.parents[1]
        out = []
        for j in range(self.n_nodes_):
            kids = [c for c in np.flatnonzero(parents == j) if c in tops]
            if not kids:
                out.append(np.zeros(0, np.int64))
                continue
            caps = np.array([len(tops[c]) for c in kids])
            picked = _allocate(q2[kids][None, :], caps, k, self.spread)[0]  # (n,) child index per slot
            taken = np.zeros(len(kids), dtype=np.int64)
            items = []
            for c in picked:
                items.append(tops[kids[c]][taken[c]])
                taken[c] += 1
            out.append(np.asarray(items, dtype=np.int64))
        return out

    def head_slots(self, user, k: int | None = None) -> int:
        """Slots the model's best items take in ``user``'s next slate of ``k`` (default ``k``) slots: ``head``
        (scaled by k / ``k`` for another slate size) before any feedback, then that times
        ``prior_strength / (prior_strength + shown)``, rounded, ``shown`` the user's (decayed) slots with
        feedback. The model's ranking leads until the user's own clicks and skips outweigh the prior, as the
        nodes' click rates do, and the learned allocation then takes the slots over."""
        _, shows = self.counts_.get(user, (None, np.zeros(1)))
        head = self.head * (int(k) / self.k if k else 1.0)
        return int(round(head * self.prior_strength / (self.prior_strength + float(shows.sum()))))

    def _draws(self, user, long, short, scores, exclude=None, candidates=None, k: int | None = None,
               n_draws: int | None = None) -> np.ndarray:
        """(M, n) the slate of each of M posterior draws (draw 0 is the one served; M = 1 without
        ``explore``), items ordered by score, -1 where a draw has fewer items."""
        k = int(k or self.k)
        order = self._ranked(scores, exclude, candidates)  # one sort serves the head and the nodes' lists
        head = order[:min(self.head_slots(user, k), k)]  # the first slots: the model's best items
        rest = head if exclude is None else np.concatenate([np.asarray(exclude, dtype=np.int64), head])
        lists = self._node_lists(order[len(head):], scores, long, short, rest, k - len(head))
        theta = self._theta(user, long, short, scores, exclude, n_draws or self.n_draws)
        taken = np.bincount(self.tree_.codes[head, 0], minlength=self.n_nodes_)  # head slots per node
        return _slates(theta, lists, k - len(head), self.spread, np.asarray(scores), head, taken)

    def _theta(self, user, long, short, scores, exclude, n_draws: int) -> np.ndarray:
        """(M, J) the level-1 nodes' click rates the slots are shared by: ``n_draws`` posterior draws with
        ``explore``, else the posterior means (M = 1)."""
        alpha, beta = self.posterior(user, long, short, scores, exclude)
        if self.explore:
            return self.rng_.beta(alpha, beta, size=(n_draws, self.n_nodes_))
        return (alpha / (alpha + beta))[None, :]

    def slate(self, user, long: list[np.ndarray], short: list[np.ndarray], scores: np.ndarray,
              exclude=None, candidates=None, k: int | None = None) -> Slate:
        """The slate for ``user`` given the model's level distributions (lists of (n_nodes_l,) arrays,
        coarse to fine), its scores of every item, the items to leave out (history), an optional
        candidate pool and an optional slate size other than ``k``."""
        self._check_fitted()
        slates = self._draws(user, long, short, scores, exclude, candidates, k)  # (M, n) items
        served = slates[0][slates[0] >= 0]
        at_position = (slates[:, :len(served)] == served[None, :]).mean(0)
        anywhere = (slates[:, :, None] == served[None, None, :]).any(1).mean(0)
        return Slate(user=user, items=served.astype(np.int64), propensities=at_position, inclusion=anywhere,
                     nodes=self.tree_.codes[served, 0].astype(np.int64), version=self.version_,
                     scores=np.asarray(scores)[served].astype(np.float64))

    def position_probabilities(self, user, long: list[np.ndarray], short: list[np.ndarray], scores: np.ndarray,
                               exclude=None, candidates=None, n_draws: int | None = None) -> np.ndarray:
        """(n_items, k) probability of each item at each position (Monte Carlo over ``n_draws`` posterior
        draws, default ``n_draws``; exact when ``explore`` is off). What off-policy estimates need."""
        self._check_fitted()
        slates = self._draws(user, long, short, scores, exclude, candidates, n_draws=n_draws)  # (M, n)
        out = np.zeros((self.tree_.n_items, self.k))
        for p in range(slates.shape[1]):
            np.add.at(out[:, p], slates[:, p], 1.0 / len(slates))
        return out

    def expected_allocation(self, user, long: list[np.ndarray], short: list[np.ndarray], scores: np.ndarray,
                            exclude=None) -> np.ndarray:
        """(n_nodes,) expected slots per level-1 node (over the policy's randomness, by Monte Carlo)."""
        slates = self._draws(user, long, short, scores, exclude)  # (M, n)
        nodes = np.where(slates >= 0, self.tree_.codes[np.maximum(slates, 0), 0], -1)
        return np.stack([(nodes == j).sum(1) for j in range(self.n_nodes_)], axis=1).mean(0)

    # -- feedback ------------------------------------------------------------------------------
    def update(self, user, nodes, rewards, slate_id=None) -> None:
        """Learn from one slate's feedback: ``nodes[p]`` the level-1 node shown at position p and
        ``rewards[p]`` in [0, 1] (click or purchase 1, skip 0). The user's older counts are first
        multiplied by ``memory``, once per slate: feedback arriving in parts gives the same ``slate_id``
        (None: every call is a new slate)."""
        self._check_fitted()
        nodes = np.asarray(nodes, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64)
        if nodes.shape != rewards.shape:
            raise ConfigError(f"nodes and rewards must have the same shape, got {nodes.shape} and {rewards.shape}")
        if len(nodes) and (nodes.min() < 0 or nodes.max() >= self.n_nodes_):
            raise ConfigError(f"nodes must be level-1 node indices in [0, {self.n_nodes_}), got {nodes.tolist()}")
        if len(rewards) and (rewards.min() < 0 or rewards.max() > 1):
            raise ConfigError(f"rewards must be in [0, 1], got {rewards.tolist()}")
        clicks, shows = self.counts_.get(user, (np.zeros(self.n_nodes_), np.zeros(self.n_nodes_)))
        if slate_id is None or self.last_slate_.get(user) != slate_id:
            clicks, shows = clicks * self.memory, shows * self.memory
        self.last_slate_[user] = slate_id
        np.add.at(clicks, nodes, rewards)
        np.add.at(shows, nodes, 1.0)
        self.counts_[user] = (clicks, shows)
        self.clicks_ += float(rewards.sum())
        self.slots_ += float(len(rewards))

    def observe(self, slate: Slate, rewards) -> None:
        """``update`` with the nodes of a served ``slate``."""
        self.update(slate.user, slate.nodes, rewards)

    def forget(self, user) -> None:
        """Drop everything learned about ``user``."""
        self._check_fitted()
        self.counts_.pop(user, None)
        self.last_slate_.pop(user, None)


def _allocate(theta: np.ndarray, caps: np.ndarray, k: int, spread: float, taken=None) -> np.ndarray:
    """(M, n) node index of each taken slot, most valuable first, for M draws of theta (M, J).

    Node j's r-th slot is worth ``theta_j / (taken[j] + r + 1) ** spread`` (``taken``: slots it already
    has, default none); slots beyond ``caps[j]`` do not exist. n = min(k, caps.sum()).
    """
    n_nodes = theta.shape[1]
    r = np.arange(k)
    before = np.zeros(n_nodes) if taken is None else np.asarray(taken, dtype=np.float64)
    values = theta[:, :, None] / (before[None, :, None] + r + 1.0) ** spread  # (M, J, k)
    values = np.where(r[None, None, :] < np.asarray(caps)[None, :, None], values, -np.inf)
    n = int(min(k, np.minimum(caps, k).sum()))
    flat = values.reshape(len(theta), n_nodes * k)
    # ties (equal values) go to the lower node index, then the lower slot: stable sort on -value
    best = np.argsort(-flat, axis=1, kind="stable")[:, :n]  # (M, n)
    return best // k


def _slates(theta: np.ndarray, lists: list[np.ndarray], k: int, spread: float, scores: np.ndarray,
            head=None, taken=None) -> np.ndarray:
    """(M, n) items of the slate of each draw, ordered by score (best first): the ``head`` items (in every
    draw) and k shared slots, node j's counted from ``taken[j]``."""
    caps = np.array([len(x) for x in lists], dtype=np.int64)
    picked = _allocate(theta, caps, k, spread, taken)  # (M, n) node per taken slot
    fixed = np.tile(np.asarray([] if head is None else head, dtype=np.int64), (len(theta), 1))  # (M, len(head))
    if picked.shape[1] == 0:
        return fixed
    # the r-th slot of node j takes lists[j][r]: r = how many earlier slots of the draw went to j
    rank = np.zeros_like(picked)
    for j in np.unique(picked):
        mask = picked == j
        rank[mask] = (np.cumsum(mask, axis=1) - 1)[mask]
    width = max(int(caps.max()), 1)
    table = np.full((len(lists), width), -1, dtype=np.int64)
    for j, items in enumerate(lists):
        table[j, :len(items)] = items
    items = np.concatenate([fixed, table[picked, rank]], axis=1)  # (M, n)
    order = np.argsort(-scores[items], axis=1, kind="stable")
    return np.take_along_axis(items, order, axis=1)
