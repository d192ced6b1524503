"""ALS matrix factorisation for implicit feedback, through the `implicit` library."""

from __future__ import annotations

import numpy as np

from arborec.base import Recommender
from arborec.diagnostics import check_param
from arborec.progress import EpochProgress


class ALS(Recommender):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via ``implicit``.

    A user's factors are recomputed from the history being scored (exact least squares given the
    item factors), so the validation item counts at test time without refitting.

    Parameters
    ----------
    factors : int, default 64
    regularization : float, default 0.05
    alpha : float, default 2.0
        Confidence weight of an observed interaction.
    iterations : int, default 15
    seed : int, default 0

    Attributes
    ----------
    model_ : implicit.cpu.als.AlternatingLeastSquares
    """

    name = "als"
    search_space = {"factors": [64, 128], "regularization": [0.01, 0.1], "alpha": [1.0, 10.0]}

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 2.0,
                 iterations: int = 15, seed: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed

    def fit(self, split, data=None):
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        check_param("factors", self.factors, int(self.factors) >= 1, "an integer >= 1")
        check_param("regularization", self.regularization, self.regularization >= 0, "a number >= 0")
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; nested BLAS threads slow it down
            self.model_ = AlternatingLeastSquares(factors=int(self.factors), regularization=self.regularization,
                                                  alpha=self.alpha, iterations=int(self.iterations),
                                                  random_state=self.seed)
            report = EpochProgress("als", int(self.iterations), unit="iteration", min_interval=2.0)
            self.model_.fit(split.train_matrix(), show_progress=False,
                            callback=lambda it, seconds, loss: report.epoch_end(it + 1, loss, seconds))
        return self

    def score(self, users, histories):
        self._check_fitted("model_")
        h = histories.to_csr(self.model_.item_factors.shape[0])
        user_factors = self.model_.recalculate_user(np.arange(len(users)), h)  # (B, factors)
        return (user_factors @ self.model_.item_factors.T).astype(np.float32)
