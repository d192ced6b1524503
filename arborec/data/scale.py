"""Scale synthetic data: a planted 3-level interest hierarchy and power-law popularity, streamed to Parquet."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from arborec.diagnostics import check_param, logger

# Top level -> (middle level, leaf nouns). A leaf is "<middle> <noun>" (numbered "Line k" past the nouns).
_DOMAINS = {
    "Beauty": (["Skin", "Hair", "Makeup", "Fragrance", "Nail", "Bath"],
               ["Serum", "Cream", "Oil", "Mist", "Gel", "Balm", "Cleanser", "Mask"]),
    "Electronics": (["Audio", "Camera", "Computer", "Phone", "Gaming", "Wearable"],
                    ["Headphones", "Speaker", "Charger", "Cable", "Case", "Adapter", "Stand", "Controller"]),
    "Home": (["Kitchen", "Bedding", "Lighting", "Storage", "Decor", "Cleaning"],
             ["Set", "Organizer", "Lamp", "Basket", "Cover", "Rack", "Tray", "Brush"]),
    "Sports": (["Running", "Cycling", "Yoga", "Camping", "Swimming", "Fitness"],
               ["Shoes", "Bottle", "Mat", "Bag", "Gloves", "Jacket", "Watch", "Band"]),
    "Books": (["Fiction", "History", "Science", "Travel", "Cooking", "Children"],
              ["Novel", "Guide", "Atlas", "Handbook", "Anthology", "Memoir", "Workbook", "Biography"]),
    "Toys": (["Puzzle", "Building", "Doll", "Outdoor", "Board Game", "Craft"],
             ["Kit", "Set", "Collection", "Pack", "Box", "Playset", "Bundle", "Starter"]),
    "Garden": (["Plant", "Tool", "Seed", "Watering", "Furniture", "Pest"],
               ["Pot", "Shears", "Mix", "Hose", "Chair", "Spray", "Trowel", "Planter"]),
    "Grocery": (["Coffee", "Tea", "Snack", "Spice", "Baking", "Breakfast"],
                ["Beans", "Blend", "Bar", "Jar", "Flour", "Cereal", "Sampler", "Pouch"]),
}
_BRANDS = ["Avalon", "Lumen", "Norra", "Verde", "Kiri", "Solace", "Amberly", "Pico", "Tarn", "Belmont", "Orrin",
           "Caspian", "Maple & Co", "Halden", "Quill", "Sora", "Brightwell", "Nomad", "Elm", "Vireo"]
_ADJECTIVES = ["Gentle", "Daily", "Intense", "Natural", "Classic", "Fresh", "Ultra", "Soft", "Pure", "Bold",
               "Compact", "Deluxe", "Essential", "Pro", "Mini", "Premium", "Everyday", "Light", "Smart", "Eco"]
_VARIANTS = ["", "", "No. 2", "Plus", "Max", "Edition", "XL", "Lite", "Original", "Travel Size"]
_TEMPLATES = ["{brand} {adj} {leaf}", "{brand} {leaf}, {adj} {variant}", "{adj} {leaf} by {brand}",
              "{brand} {leaf} {variant}", "{leaf} - {brand} {adj}"]
MIN_ITEMS = 48  # the smallest taxonomy: 8 top x 6 middle nodes x 1 leaf
_USERS_PER_BLOCK = 4096  # users are generated (and seeded) in blocks of this size: output independent of chunking


@dataclass
class ScaleConfig:
    """How a scale dataset is generated (every field is recorded in the output's ``generate.json``)."""

    n_items: int = 10_000
    n_users: int = 1_000
    n_events: int = 20_000
    seed: int = 0
    zipf: float = 1.0  # item popularity ~ rank^-zipf (1.0: the classic long tail)
    items_per_leaf: int = 250  # sets the number of leaves (at least one per middle node)
    min_history: int = 5  # every user gets at least this many events
    session_length: float = 8.0  # mean events per session (one interest per session)
    explore: float = 0.05  # share of sessions on a popularity-drawn leaf outside the user's interests
    noise: float = 0.1  # share of events on a globally popular item, whatever the session
    leaf_temper: float = 0.5  # within a leaf, items are drawn by popularity ** this (1.0: as skewed as overall)

    def validate(self) -> None:
        check_param("n_items", self.n_items, self.n_items >= MIN_ITEMS,
                    f"an integer >= {MIN_ITEMS} (one item per leaf)")
        check_param("n_users", self.n_users, self.n_users >= 1, "an integer >= 1")
        check_param("n_events", self.n_events, self.n_events >= self.n_users * self.min_history,
                    f"an integer >= n_users * min_history = {self.n_users * self.min_history}")
        check_param("zipf", self.zipf, self.zipf >= 0, "a number >= 0")
        check_param("items_per_leaf", self.items_per_leaf, self.items_per_leaf >= 1, "an integer >= 1")
        check_param("min_history", self.min_history, self.min_history >= 1, "an integer >= 1")
        check_param("session_length", self.session_length, self.session_length >= 1, "a number >= 1")
        for name in ("explore", "noise", "leaf_temper"):
            value = getattr(self, name)
            check_param(name, value, 0 <= value <= 1, "a probability in [0, 1]")


class _Taxonomy:
    """Leaves numbered top-major (top, middle, leaf), so every top and middle node is a contiguous leaf range."""

    def __init__(self, leaves_per_mid: int):
        self.tops = list(_DOMAINS)
        self.mids_per_top = len(next(iter(_DOMAINS.values()))[0])
        self.leaves_per_mid = leaves_per_mid
        self.paths = []
        for top, (mids, nouns) in _DOMAINS.items():
            for mid in mids:
                for k in range(leaves_per_mid):
                    noun = nouns[k % len(nouns)]
                    leaf = f"{mid} {noun}" + (f" Line {k // len(nouns) + 1}" if k >= len(nouns) else "")
                    self.paths.append((top, mid, leaf))
        self.n_leaves = len(self.paths)
        leaf = np.arange(self.n_leaves)
        self.mid_of_leaf = leaf // leaves_per_mid  # (n_leaves,) global middle-node index
        self.top_of_leaf = self.mid_of_leaf // self.mids_per_top


class _Sampler:
    """Draws from a weighted population in contiguous groups with searchsorted on one cumulative sum."""

    def __init__(self, weights: np.ndarray, group_start: np.ndarray):
        self.cum = np.cumsum(weights, dtype=np.float64)  # (n,)
        self.start = np.asarray(group_start)  # (n_groups + 1,) group g spans [start[g], start[g+1])
        self.base = np.concatenate([[0.0], self.cum])[self.start]  # cumulative weight before each group

    def draw(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        """One index per entry of ``groups`` (n,), weighted within its group."""
        lo, hi = self.base[groups], self.base[groups + 1]
        r = lo + rng.random(len(groups)) * (hi - lo)
        idx = np.searchsorted(self.cum, r, side="right")
        return np.clip(idx, self.start[groups], self.start[groups + 1] - 1)


def make_scale(n_items: int = 10_000, n_users: int = 1_000, n_events: int = 20_000, seed: int = 0,
               out_dir: str | Path = "scale-data", chunk_events: int = 1_000_000, progress: bool = False,
               **options) -> Path:
    """Generate a large dataset with planted hierarchical interests and stream it to Parquet.

    Items sit in a three-level taxonomy (8 top categories x 6 middle nodes x leaves); titles come
    from templates over brand, adjective, leaf and variant. Item popularity follows a power law
    (``zipf``). Each user has one to three interest leaves, the second and third mostly under the
    first one's middle or top node; the history is a time-ordered series of sessions, each on one
    interest (sometimes an exploratory leaf), with some events on globally popular items.

    Memory stays bounded: catalogue-sized arrays plus one chunk of about ``chunk_events`` events
    (users are generated in seeded blocks, so the output does not depend on ``chunk_events``).

    Writes into ``out_dir``: ``interactions.parquet`` (user, item, timestamp; grouped by user and
    time-ordered within a user), ``catalog.parquet`` (item, title, brand, category_path),
    ``user_interests.parquet`` (user, leaf, the planted truth; ``leaf`` indexes the catalogue's leaf
    paths, numbered top-major) and ``generate.json``
    (the configuration and counts). :func:`arborec.data.read_folder` reads the folder back.

    Returns the folder.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    config = ScaleConfig(n_items=n_items, n_users=n_users, n_events=n_events, seed=seed, **options)
    config.validate()
    check_param("chunk_events", chunk_events, chunk_events >= 1, "an integer >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    # -- catalogue: taxonomy, item leaves, popularity, titles ------------------------------------
    rng = np.random.default_rng([seed, 0])
    n_mids = len(_DOMAINS) * len(next(iter(_DOMAINS.values()))[0])
    tax = _Taxonomy(leaves_per_mid=max(1, round(n_items / config.items_per_leaf / n_mids)))
    # every leaf holds at least one item; the rest fall uniformly; items are numbered leaf by leaf
    extra = rng.integers(tax.n_leaves, size=n_items - tax.n_leaves)
    item_leaf = np.sort(np.concatenate([np.arange(tax.n_leaves), extra]))  # (n_items,)
    weight = (rng.permutation(n_items) + 1.0) ** -config.zipf  # (n_items,) power-law popularity
    leaf_start = np.searchsorted(item_leaf, np.arange(tax.n_leaves + 1))  # (n_leaves + 1,)
    leaf_weight = np.add.reduceat(weight, leaf_start[:-1])  # (n_leaves,) demand of each leaf
    in_leaf = _Sampler(weight ** config.leaf_temper, leaf_start)  # an item within a leaf (flatter: fewer repeats)
    any_item = _Sampler(weight, np.array([0, n_items]))  # a globally popular item
    mid_start = np.arange(0, tax.n_leaves + 1, tax.leaves_per_mid)
    top_start = np.arange(0, tax.n_leaves + 1, tax.leaves_per_mid * tax.mids_per_top)
    leaf_in_mid, leaf_in_top = _Sampler(leaf_weight, mid_start), _Sampler(leaf_weight, top_start)
    any_leaf = _Sampler(leaf_weight, np.array([0, tax.n_leaves]))

    item_ids = np.array([f"i{i:07d}" for i in range(n_items)], dtype=object)
    brand = rng.integers(len(_BRANDS), size=n_items)
    adj = rng.integers(len(_ADJECTIVES), size=n_items)
    variant = rng.integers(len(_VARIANTS), size=n_items)
    template = rng.integers(len(_TEMPLATES), size=n_items)
    catalog_schema = pa.schema([("item", pa.string()), ("title", pa.string()), ("brand", pa.string()),
                                ("category_path", pa.list_(pa.string()))])
    with pq.ParquetWriter(out / "catalog.parquet", catalog_schema) as writer:
        for s in range(0, n_items, 200_000):
            rows = range(s, min(n_items, s + 200_000))
            titles = [" ".join(_TEMPLATES[template[i]].format(
                brand=_BRANDS[brand[i]], adj=_ADJECTIVES[adj[i]], leaf=tax.paths[item_leaf[i]][2],
                variant=_VARIANTS[variant[i]]).rstrip(", ").split()) for i in rows]
            writer.write_table(pa.table({
                "item": item_ids[s:rows.stop], "title": titles,
                "brand": [_BRANDS[b] for b in brand[s:rows.stop]],
                "category_path": [list(tax.paths[item_leaf[i]]) for i in rows]}, schema=catalog_schema))

    # -- history lengths: heavy-tailed, summing exactly to n_events ------------------------------
    spread = rng.lognormal(0.0, 1.0, size=n_users)
    lengths = config.min_history + rng.multinomial(n_events - config.min_history * n_users, spread / spread.sum())

    # -- users, block by block -------------------------------------------------------------------
    event_schema = pa.schema([("user", pa.string()), ("timestamp", pa.int64()), ("item", pa.string())])
    interest_schema = pa.schema([("user", pa.string()), ("leaf", pa.int32()), ("top", pa.string()),
                                 ("middle", pa.string()), ("leaf_name", pa.string())])
    pending: list = []
    n_blocks = -(-n_users // _USERS_PER_BLOCK)
    with pq.ParquetWriter(out / "interactions.parquet", event_schema) as events, \
            pq.ParquetWriter(out / "user_interests.parquet", interest_schema) as truth:
        for b in tqdm(range(n_blocks), desc="generate", disable=not progress, leave=False):
            users = np.arange(b * _USERS_PER_BLOCK, min(n_users, (b + 1) * _USERS_PER_BLOCK))
            table, interests = _user_block(np.random.default_rng([seed, 1, b]), users, lengths[users], config, tax,
                                           item_ids, in_leaf, any_item, leaf_in_mid, leaf_in_top, any_leaf)
            truth.write_table(pa.Table.from_pandas(interests, schema=interest_schema, preserve_index=False))
            pending.append(table)
            if sum(len(t) for t in pending) >= chunk_events or b == n_blocks - 1:
                events.write_table(pa.concat_tables(pending).cast(event_schema))
                pending = []

    info = {"config": asdict(config), "n_leaves": tax.n_leaves, "n_middle": n_mids, "n_top": len(tax.tops),
            "seconds": round(time.perf_counter() - t0, 2)}
    (out / "generate.json").write_text(json.dumps(info, indent=2))
    logger.info("generated %d items, %d users, %d events into %s in %.1f s", n_items, n_users, n_events, out,
                info["seconds"])
    return out


def _user_block(rng, users, lengths, config, tax, item_ids, in_leaf, any_item, leaf_in_mid, leaf_in_top,
                any_leaf):
    """One block of users: planted interests, sessions, events (a pyarrow table) and the truth table."""
    import pyarrow as pa

    n = len(users)
    # Interests: the first leaf by popularity; the others under the same middle node (50%), the same
    # top node (40%) or anywhere (10%), which plants the hierarchy in co-consumption.
    first = any_leaf.draw(rng, np.zeros(n, dtype=np.int64))
    interests = np.empty((n, 3), dtype=np.int64)
    interests[:, 0] = first
    for k in (1, 2):
        how = rng.random(n)
        interests[:, k] = np.where(how < 0.5, leaf_in_mid.draw(rng, tax.mid_of_leaf[first]),
                                   np.where(how < 0.9, leaf_in_top.draw(rng, tax.top_of_leaf[first]),
                                            any_leaf.draw(rng, np.zeros(n, dtype=np.int64))))
    n_interests = rng.choice(3, size=n, p=[0.3, 0.4, 0.3]) + 1  # (n,) 1, 2 or 3

    # Sessions: each event starts a new session with probability 1 / session_length (the first always).
    user_of_event = np.repeat(np.arange(n), lengths)  # (E,) block-local user
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(len(user_of_event)) - starts[user_of_event]
    new_session = (pos == 0) | (rng.random(len(pos)) < 1.0 / config.session_length)
    session = np.cumsum(new_session) - 1  # (E,) session index
    s_user = user_of_event[new_session]  # (S,)
    s_leaf = interests[s_user, (rng.random(len(s_user)) * n_interests[s_user]).astype(np.int64)]
    explore = rng.random(len(s_user)) < config.explore
    s_leaf[explore] = any_leaf.draw(rng, np.zeros(int(explore.sum()), dtype=np.int64))

    item = in_leaf.draw(rng, s_leaf[session])  # (E,)
    noise = rng.random(len(item)) < config.noise
    item[noise] = any_item.draw(rng, np.zeros(int(noise.sum()), dtype=np.int64))

    # Time: minutes apart within a session, days apart between sessions, from a random start per user.
    gap = np.where(new_session, rng.exponential(3 * 86_400, len(pos)), rng.exponential(180, len(pos))) + 1
    gap[pos == 0] = rng.integers(1_500_000_000, 1_600_000_000, size=n)
    ts = np.cumsum(gap.astype(np.int64))
    ts -= np.repeat(np.concatenate([[0], ts[starts[1:] - 1]]), lengths)  # cumulative sum restarts per user

    user_ids = np.array([f"u{u:07d}" for u in users], dtype=object)
    table = pa.table({"user": user_ids[user_of_event], "timestamp": ts, "item": item_ids[item]})
    kept = np.arange(3)[None, :] < n_interests[:, None]  # (n, 3)
    rows, cols = np.nonzero(kept)
    leaves = interests[rows, cols]
    truth = pd.DataFrame({"user": user_ids[rows], "leaf": leaves.astype(np.int32),
                          "top": [tax.paths[leaf][0] for leaf in leaves],
                          "middle": [tax.paths[leaf][1] for leaf in leaves],
                          "leaf_name": [tax.paths[leaf][2] for leaf in leaves]})
    return table, truth


def read_scale_folder(path: str | Path, name: str | None = None):
    """Read a folder written by :func:`make_scale` (or any ``interactions.parquet`` + ``catalog.parquet``)."""
    from arborec.data._tables import Dataset

    import pyarrow.parquet as pq

    path = Path(path)
    # ids dictionary-encoded (pandas categoricals): 10M events hold 0.5M user and 1M item strings, not 20M
    inter = pq.read_table(path / "interactions.parquet", columns=["user", "item", "timestamp"],
                          read_dictionary=["user", "item"]).to_pandas()
    catalog = pd.read_parquet(path / "catalog.parquet")
    return Dataset(name=name or path.name, interactions=inter, catalog=catalog, has_timestamps=True, source=str(path))


def is_scale_folder(path: Path) -> bool:
    """True when ``path`` holds a raw (not prepared) ``interactions.parquet`` with user/item columns."""
    if not (path / "interactions.parquet").exists() or not (path / "catalog.parquet").exists():
        return False
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path / "interactions.parquet").names)
    return {"user", "item", "timestamp"} <= names
