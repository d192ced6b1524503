"""Grid search on validation NDCG@10, and a fit-then-evaluate run that returns a result record."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable

import numpy as np

from arborec.diagnostics import logger
from arborec.evaluate._protocol import evaluate
from arborec.evaluate._report import result_record, save_ranks

SELECT_ON = "ndcg@10"  # the only metric model selection reads, on the validation stage


def select_within_one_se(scores: dict, prefer: dict | None = None):
    """The key of ``scores`` ({key: (n_users,) per-user validation metric}) with the best mean; or, given
    ``prefer`` ({key: float}), the key with the largest ``prefer`` among those whose mean is within one
    standard error of the best (the one-standard-error rule: validation cannot tell them apart from the
    best), ties going to the better mean."""
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    best = max(means, key=means.get)
    if not prefer:
        return best
    se = float(np.std(scores[best]) / np.sqrt(max(len(scores[best]), 1)))
    near = [k for k in means if means[k] >= means[best] - se]
    return max(near, key=lambda k: (prefer[k], means[k]))


def grid(space: dict[str, list]) -> list[dict]:
    """Every combination of a {parameter: [values]} space (one empty dict for an empty space)."""
    keys = sorted(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def tune(make_model: Callable[..., object], space: dict[str, list], split, data=None, progress: bool = False,
         fit_kwargs: dict | None = None):
    """Fit one model per grid point (``fit(split, data, **fit_kwargs)``); keep the best validation NDCG@10.

    Returns ``(best_model, best_params, best_valid_evaluation, best_fit_seconds, trials)``; ``trials`` lists
    ``{"params", "valid_ndcg@10", "fit_seconds"}`` for every grid point. The test split is not read.
    """
    best = None
    trials = []
    for params in grid(space):
        t0 = time.perf_counter()
        model = make_model(**params).fit(split, data, **(fit_kwargs or {}))
        fit_s = time.perf_counter() - t0
        valid = evaluate(model, split, "valid", progress=progress)
        score = valid.metrics[SELECT_ON]
        trials.append({"params": params, f"valid_{SELECT_ON}": score, "fit_seconds": round(fit_s, 3)})
        logger.info("tune %s %s: valid %s = %.4f (%.1f s)", type(model).__name__, params, SELECT_ON, score, fit_s)
        if best is None or score > best[3].metrics[SELECT_ON]:
            best = (model, params, fit_s, valid)
    model, params, fit_s, valid = best
    return model, params, valid, fit_s, trials


def run_model(make_model: Callable[..., object], split, data, *, space: dict[str, list] | None = None,
              params: dict | None = None, seed: int = 0, progress: bool = False, command: str | None = None,
              with_test: bool = True, resume: str | Path | None = None, ranks_to: str | Path | None = None) -> dict:
    """Fit (tuning over ``space`` when given) and evaluate a model; return its result record.

    ``make_model(**params)`` builds the model. Validation picks the parameters; the test stage
    is evaluated once, for the chosen model only, and not at all with ``with_test=False`` (ablations and
    explorations: the record's ``test`` is then None). With ``resume`` and no ``space``, an epoch-trained
    model keeps its training state in that file after every validation and continues from it when it is there
    (a stopped run goes on where it was; see ``SequentialRecommender.resume_path``; the caller removes the file
    once the record is saved); the record's fit seconds include those of the epochs read back. With ``ranks_to``,
    the test target's rank of every test user is saved there (:func:`arborec.evaluate.save_ranks`), for paired
    per-user comparisons (:func:`arborec.evaluate.paired_comparison`).
    """
    from arborec.sequential import resuming

    space = {k: list(v) for k, v in (space or {}).items()}
    fixed = dict(params or {})
    state = None if space else resume
    t0 = time.perf_counter()
    model, chosen, valid, fit_s, trials = tune(lambda **p: resuming(make_model(**fixed, **p), state), space, split,
                                               data, progress)
    fit_s += getattr(model, "resumed_seconds_", 0.0)
    total_fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    test = evaluate(model, split, "test", progress=progress) if with_test else None
    if test is not None and ranks_to is not None:
        save_ranks(test.ranks, ranks_to)
    test = test.to_dict() if test is not None else None
    eval_s = time.perf_counter() - t1
    all_params = model.get_params() if hasattr(model, "get_params") else {**fixed, **chosen}
    extra = {"tuning": {"space": space, "selected_on": f"valid {SELECT_ON}", "trials": trials,
                        "total_seconds": round(total_fit_s, 3)}} if space else {}
    if hasattr(model, "epoch_seconds_"):
        extra["epoch_seconds"] = model.epoch_seconds_
    if getattr(model, "resumed_epochs_", 0):
        extra["resumed_after_epoch"] = model.resumed_epochs_
    return result_record(dataset=data.name, stats=data.stats, split_hash=split.fingerprint(),
                         model=getattr(model, "name", type(model).__name__), params=all_params, seed=seed,
                         valid=valid.to_dict(), test=test, fit_seconds=fit_s,
                         eval_seconds=eval_s, command=command, extra=extra)
