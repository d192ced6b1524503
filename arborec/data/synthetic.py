"""A small generated dataset with a planted interest hierarchy, for demos and tests without real data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from arborec.data._tables import Dataset

# A three-level taxonomy: top -> middle -> leaf, with words that make titles readable.
_TAXONOMY = {
    "Skin Care": {"Face": ["Cleanser", "Serum", "Moisturizer"], "Body": ["Lotion", "Scrub", "Body Oil"]},
    "Hair Care": {"Shampoo": ["Volumizing Shampoo", "Dry Shampoo", "Clarifying Shampoo"],
                  "Styling": ["Hair Gel", "Hair Spray", "Styling Cream"]},
    "Makeup": {"Eyes": ["Mascara", "Eyeliner", "Eyeshadow Palette"], "Lips": ["Lipstick", "Lip Gloss", "Lip Liner"]},
    "Fragrance": {"Women's": ["Eau de Parfum", "Body Mist", "Perfume Oil"],
                  "Men's": ["Cologne", "Aftershave", "Eau de Toilette"]},
}
_BRANDS = ["Avalon", "Lumen", "Norra", "Verde", "Kiri", "Solace", "Amberly", "Pico"]
_ADJECTIVES = ["Gentle", "Daily", "Intense", "Natural", "Classic", "Fresh", "Ultra", "Soft", "Pure", "Bold"]


def make_synthetic(n_users: int = 800, items_per_leaf: int = 12, seed: int = 0,
                   min_len: int = 6, max_len: int = 30) -> Dataset:
    """Generate users whose sequences follow a planted hierarchy.

    Each user has one to three favourite leaves (long-term interest) and moves between them;
    within a leaf, consumption walks forward through the leaf's items (a sequential pattern), and
    item popularity inside a leaf is skewed. Category paths are ``[top, middle, leaf]``.

    Returns a :class:`Dataset` named ``"synthetic"`` with about n_users * 18 events.
    """
    rng = np.random.default_rng(seed)
    leaves = [(top, mid, leaf) for top, mids in _TAXONOMY.items() for mid, ls in mids.items() for leaf in ls]
    rows, leaf_items = [], []
    for li, (top, mid, leaf) in enumerate(leaves):
        ids = []
        for j in range(items_per_leaf):
            item = f"i{li:02d}{j:02d}"
            brand = _BRANDS[(li * 3 + j) % len(_BRANDS)]
            title = f"{brand} {_ADJECTIVES[(li + 7 * j) % len(_ADJECTIVES)]} {leaf} No. {j + 1}"
            rows.append({"item": item, "title": title, "brand": brand, "category_path": [top, mid, leaf]})
            ids.append(item)
        leaf_items.append(ids)
    catalog = pd.DataFrame(rows)

    # Users prefer leaves under one or two top-level categories.
    tops = sorted(_TAXONOMY)
    leaf_top = np.array([tops.index(t) for t, _, _ in leaves])
    events = []
    for u in range(n_users):
        home = rng.choice(len(tops), size=rng.integers(1, 3), replace=False)
        candidates = np.flatnonzero(np.isin(leaf_top, home))
        favourites = rng.choice(candidates, size=min(len(candidates), rng.integers(1, 4)), replace=False)
        length = int(rng.integers(min_len, max_len + 1))
        leaf = int(rng.choice(favourites))
        pos = int(min(rng.geometric(0.4) - 1, items_per_leaf - 1))
        t = int(rng.integers(1_600_000_000, 1_650_000_000))
        for _ in range(length):
            events.append((f"u{u:04d}", leaf_items[leaf][pos], t))
            t += int(rng.integers(60, 86_400))
            if rng.random() < 0.3:  # switch interest (mostly among favourites, sometimes anywhere)
                leaf = int(rng.choice(favourites)) if rng.random() < 0.85 else int(rng.integers(len(leaves)))
                pos = int(min(rng.geometric(0.3) - 1, items_per_leaf - 1))
            elif rng.random() < 0.6:  # walk forward in the leaf: the sequential signal
                pos = (pos + 1) % items_per_leaf
            else:  # any item of the leaf, popular ones more often
                pos = int(min(rng.geometric(0.25) - 1, items_per_leaf - 1))
    inter = pd.DataFrame(events, columns=["user", "item", "timestamp"])
    return Dataset(name="synthetic", interactions=inter, catalog=catalog, has_timestamps=True, source="generated")
