"""Where the sequential training core used to live: it is now :mod:`arborec.sequential` (kept for old imports)."""

from arborec.sequential import (SequentialRecommender, batch_order, full_softmax_cross_entropy, pad_left,
                                prefix_windows, training_windows)

__all__ = ["SequentialRecommender", "batch_order", "full_softmax_cross_entropy", "pad_left", "prefix_windows",
           "training_windows"]
