"""Statistics for claims: a mean over seeds with its 95% interval, and a paired per-user comparison of two models."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


def per_user_ndcg(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """(n_users,) NDCG@k of each user's single held-out target, from 0-based ranks."""
    ranks = np.asarray(ranks)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def seed_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of a Student-t interval over per-seed values; half-width NaN for one value."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan")
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(sem * stats.t.ppf(0.5 + confidence / 2, len(values) - 1))


@dataclass
class PairedComparison:
    """Model a against model b on the same users: the mean per-user difference, its interval and a p-value."""

    n_users: int
    mean_a: float
    mean_b: float
    diff: float  # mean over users of (a - b)
    ci_low: float  # bootstrap percentile interval of diff
    ci_high: float
    p_value: float  # two-sided paired t-test
    relative: float  # diff / mean_b

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def verdict(self) -> str:
        """'win', 'loss' or 'tie' at the 5% level."""
        if self.p_value < 0.05:
            return "win" if self.diff > 0 else "loss"
        return "tie"


def paired_comparison(a, b, confidence: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0) -> PairedComparison:
    """Compare two per-user metric vectors of the same users, in the same order.

    The interval is a bootstrap over users (percentile method, ``n_resamples`` resamples) of the mean
    difference; the p-value is the paired t-test's (for thousands of users the mean difference is close
    to normal). Pass per-user values already averaged over each model's seeds to compare seed means.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_comparison needs two 1-d arrays of the same users, got {a.shape} and {b.shape}")
    d = a - b
    if np.allclose(d, d[0]):  # no spread: the interval is the point and the test says nothing
        low = high = float(d.mean())
        p = 1.0 if d[0] == 0 else 0.0
    else:
        boot = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                               method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
        low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
        p = float(stats.ttest_rel(a, b).pvalue)
    mean_b = float(b.mean())
    return PairedComparison(n_users=len(d), mean_a=float(a.mean()), mean_b=mean_b, diff=float(d.mean()),
                            ci_low=low, ci_high=high, p_value=p,
                            relative=float(d.mean() / mean_b) if mean_b else float("nan"))


def paired_ratio(a, b, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(ratio, low, high): mean(a) / mean(b) over the same users, with a paired bootstrap percentile interval
    (users resampled together). For "model a's cold-item Recall@10 is 2x model b's": a and b are the per-user
    hits (seed means) on the cold-item test users."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not b.sum():
        raise ValueError(f"paired_ratio needs two 1-d arrays of the same users and a nonzero b, got {a.shape}, {b.shape}")
    def ratio(x, y, axis):
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample without b's hits: an infinite ratio
            return np.where(y.mean(axis) > 0, x.mean(axis) / y.mean(axis), np.inf)

    with np.errstate(invalid="ignore"):  # the spread of a distribution holding inf (scipy computes it): NaN
        boot = stats.bootstrap((a, b), ratio, paired=True, confidence_level=confidence, n_resamples=n_resamples,
                               method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    return float(a.mean() / b.mean()), float(boot.confidence_interval.low), float(boot.confidence_interval.high)
