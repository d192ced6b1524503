"""The contract every recommender implements: parameters in __init__, ``fit`` on a split, ``score`` histories."""

from __future__ import annotations

import inspect
from typing import Callable, ClassVar

import numpy as np

from arborec.data import Histories, PreparedData, Split
from arborec.diagnostics import NotFittedError


class Recommender:
    """Base class: ``__init__`` stores keyword parameters; ``fit`` learns state ending in ``_``.

    Subclasses implement :meth:`fit` and :meth:`score`. ``search_space`` lists the few
    parameters worth tuning on validation NDCG@10, with candidate values.
    """

    name: ClassVar[str] = "recommender"
    search_space: ClassVar[dict[str, list]] = {}
    #: epoch-trained models call ``on_validation(epoch, valid_ndcg10)`` after each validation; it may raise
    #: to stop training (the benchmark suite's pruner does). Not a parameter: set it on the instance.
    on_validation: ClassVar[Callable[[int, float], None] | None] = None

    def fit(self, split: Split, data: PreparedData | None = None) -> "Recommender":
        """Learn from ``split``'s training histories (``data`` gives text and categories if needed)."""
        raise NotImplementedError

    def score(self, users: np.ndarray, histories: Histories) -> np.ndarray:
        """(B, n_items) float32 scores, higher is better, for the users' next item given their histories."""
        raise NotImplementedError

    def get_params(self) -> dict:
        """The ``__init__`` parameters and their current values."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def set_params(self, **params) -> "Recommender":
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}; parameters: {sorted(valid)}")
            setattr(self, key, value)
        return self

    def _check_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
