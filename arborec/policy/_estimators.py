"""Off-policy estimates of a slate policy's reward from logged slates: IPS, self-normalised IPS, DR, replay."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

from arborec.diagnostics import ConfigError


@dataclass(frozen=True)
class Estimate:
    """An estimate of the expected reward per slate with its (normal-approximation) confidence interval."""

    estimator: str
    value: float
    low: float
    high: float
    n: int  # logged slates used (replay: matched positions)

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict:
        return asdict(self)


def _as_2d(name: str, a, shape=None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or (shape is not None and a.shape != shape):
        raise ConfigError(f"{name} must be (n_slates, n_positions){'' if shape is None else ' ' + str(shape)}, "
                          f"got shape {a.shape}")
    return a


def _interval(name: str, value: float, terms: np.ndarray, alpha: float) -> Estimate:
    """value +- z * sd(terms) / sqrt(n): ``terms`` are the per-slate terms (or influence terms) whose mean it is."""
    n = len(terms)
    half = norm.ppf(1 - alpha / 2) * (terms.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf)
    return Estimate(name, float(value), float(value - half), float(value + half), n)


def off_policy_value(rewards, logging_propensity, target_propensity, reward_hat=None, target_reward_hat=None,
                     alpha: float = 0.05) -> dict[str, Estimate]:
    """IPS, self-normalised IPS and (with a reward model) doubly-robust estimates of a target policy's
    expected reward per slate, from slates logged under another policy.

    Assumes the item-position model: the reward at a position depends only on the item shown there
    and the position (then per-position weights ``target / logging`` are unbiased and the reward of a
    slate is the sum over its positions).

    Parameters
    ----------
    rewards : (N, P) reward at each logged position (NaN: no item there)
    logging_propensity : (N, P) probability the logging policy had of showing that item at that position
    target_propensity : (N, P) the same probability under the target policy
    reward_hat : (N, P) a reward model's prediction for the logged (item, position), optional
    target_reward_hat : (N,) the reward model's expected slate reward under the target policy (sum over
        positions and items of target probability x predicted reward); with ``reward_hat``, gives DR
    alpha : 1 - the confidence level of the intervals

    Returns {"ips", "snips"[, "dr"]: Estimate}.
    """
    r = _as_2d("rewards", rewards)
    mu = _as_2d("logging_propensity", logging_propensity, r.shape)
    pi = _as_2d("target_propensity", target_propensity, r.shape)
    shown = ~np.isnan(r)
    if np.any(shown & ~(mu > 0)):
        raise ConfigError("logging_propensity must be > 0 wherever an item was logged")
    w = np.where(shown, pi / np.where(shown, mu, 1.0), 0.0)  # (N, P)
    r = np.where(shown, r, 0.0)
    out = {}
    ips_terms = (w * r).sum(1)
    out["ips"] = _interval("ips", ips_terms.mean(), ips_terms, alpha)
    wsum = w.sum(0)  # (P,)
    safe = np.where(wsum > 0, wsum, 1.0)
    per_position = np.where(wsum > 0, (w * r).sum(0) / safe, 0.0)  # (P,)
    influence = (w * (r - per_position[None, :]) / (safe[None, :] / len(r))).sum(1)  # (N,) delta method
    out["snips"] = _interval("snips", per_position.sum(), influence + per_position.sum(), alpha)
    if reward_hat is not None or target_reward_hat is not None:
        if reward_hat is None or target_reward_hat is None:
            raise ConfigError("doubly robust needs both reward_hat and target_reward_hat")
        rh = np.where(shown, _as_2d("reward_hat", reward_hat, r.shape), 0.0)
        dm = np.asarray(target_reward_hat, dtype=np.float64)
        if dm.shape != (len(r),):
            raise ConfigError(f"target_reward_hat must be ({len(r)},), got shape {dm.shape}")
        dr_terms = dm + (w * (r - rh)).sum(1)
        out["dr"] = _interval("dr", dr_terms.mean(), dr_terms, alpha)
    return out


def replay(rewards, logged_items, target_items, alpha: float = 0.05) -> Estimate:
    """The replay estimate: at each position, the mean reward over the logged slates whose item there
    is the one the (deterministic) target policy would show; summed over positions.

    Unbiased when the logging policy chose each position's item uniformly at random among the same
    candidates (otherwise it only replays). The interval adds the positions' variances.
    """
    r = _as_2d("rewards", rewards)
    logged = np.asarray(logged_items)
    target = np.asarray(target_items)
    if logged.shape != r.shape or target.shape != r.shape:
        raise ConfigError(f"logged_items and target_items must have the rewards' shape {r.shape}, got "
                          f"{logged.shape} and {target.shape}")
    match = (logged == target) & ~np.isnan(r)
    value, var, n = 0.0, 0.0, int(match.sum())
    for p in range(r.shape[1]):
        hits = r[match[:, p], p]
        if len(hits):
            value += hits.mean()
            var += hits.var(ddof=1) / len(hits) if len(hits) > 1 else np.inf
    half = norm.ppf(1 - alpha / 2) * np.sqrt(var)
    return Estimate("replay", float(value), float(value - half), float(value + half), n)
