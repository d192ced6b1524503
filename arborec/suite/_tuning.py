"""Validation-only tuning of one model on one dataset: an Optuna study with pruning, kept in a journal file so it resumes."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from arborec.evaluate import evaluate
from arborec.evaluate._tuning import SELECT_ON
from arborec.recommenders import make_model
from arborec.sequential import resuming

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: trials that ended this way count against the budget (an interrupted RUNNING trial does not)
SPENT = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: what a trial may fail with and the tuning go on (a diverged model, a model that refuses the data, out of memory)
FAILURES = (FloatingPointError, RuntimeError, ValueError, MemoryError)


class TuningFailed(RuntimeError):
    """No trial of a tuning finished; ``errors`` holds what the failed trials raised (the suite's skip reason)."""

    def __init__(self, name: str, n_trials: int, errors: list[str]):
        self.errors = errors
        super().__init__(f"tuning {name}: no trial finished ({n_trials} failed or pruned): "
                         f"{'; '.join(errors) or 'no error recorded'}")


@dataclass
class TuningResult:
    """What a study found: the best parameters, and the fitted best model when this process trained it."""

    params: dict
    valid_ndcg: float
    trials: list[dict]  # one per spent trial: number, state, params, valid ndcg@10, seconds (never test)
    seconds: float  # machine time of all spent trials (fit + validation)
    model: object | None = field(default=None, repr=False)


def grid_size(space: dict[str, list]) -> int:
    return math.prod(len(v) for v in space.values())


def state_path(folder: Path | None, name: str, params: dict, seed: int) -> Path | None:
    """Where the fit of ``name`` with ``params`` and ``seed`` keeps its training state (None: no ``folder``)."""
    if folder is None:
        return None
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(folder) / f"{name}-seed{seed}-{digest}.pt"


def tune_model(name: str, space: dict[str, list], fixed: dict, split, data, journal: Path, *,
               budget: int, seed: int = 0, on_trial=None, states: Path | None = None) -> TuningResult:
    """Search ``space`` for model ``name`` on validation NDCG@10 with at most ``budget`` trials.

    Spaces no larger than the budget are searched exhaustively (grid); larger ones with TPE (seeded).
    Epoch-trained models report their validation NDCG@10 at every validation and a median pruner
    stops trials that trail the earlier ones. The study lives in ``journal`` (one study per model);
    rerunning continues where it stopped: finished trials are kept, interrupted ones are marked failed
    and not counted (so two processes must not tune the same model at once). With a ``states`` folder, each
    trial's fit keeps its training state there (see ``SequentialRecommender.resume_path``): an interrupted
    trial that left one is run again first, from where it stopped; the best finished trial's state is kept
    (the final run of that setting reads it instead of training again), the others' are removed.
    ``on_trial(trial_dict)`` is called after every trial (progress). The test split is never read here.
    """
    journal.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    n = min(budget, grid_size(space))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=4)
    study = optuna.create_study(study_name=study_name(name, space, storage), storage=storage,
                                direction="maximize", pruner=pruner, load_if_exists=True)
    # a resumed study draws on from where it stopped, not the first draws again: its seed moves on with its trials
    study.sampler = (optuna.samplers.GridSampler(space, seed=seed) if grid_size(space) <= budget
                     else optuna.samplers.TPESampler(seed=seed + len(study.trials), n_startup_trials=min(4, n)))
    run_seed = fixed.get("seed", seed)
    waiting = [t.params for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)  # a stop mid-trial: redo it
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        path = state_path(states, name, t.params, run_seed)
        if path is not None and path.exists() and set(t.params) == set(space) and t.params not in waiting:
            study.enqueue_trial(t.params)  # the same setting next, continued from its saved state
            waiting.append(t.params)
    best: dict = {"value": -np.inf, "model": None}

    def objective(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
        earlier = next((t for t in _spent(study) if t.params == params), None)
        if earlier is not None:  # a setting tried already: its outcome again, at no cost (and not counted)
            trial.set_user_attr("repeat_of", earlier.number)
            trial.set_user_attr("seconds", 0.0)
            if earlier.state != TrialState.COMPLETE:
                raise optuna.TrialPruned(f"repeats trial {earlier.number}")
            return earlier.value
        model = resuming(make_model(name, **fixed, **params), state_path(states, name, params, run_seed))

        def report(epoch: int, ndcg: float) -> None:
            trial.report(ndcg, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"valid ndcg@10 {ndcg:.4f} at epoch {epoch} trails the median")

        model.on_validation = report
        t0 = time.perf_counter()
        try:
            model.fit(split, data)
            value = evaluate(model, split, "valid").metrics[SELECT_ON]
        except FAILURES as exc:  # kept with the trial: the skip reason when every trial fails
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise
        finally:  # a resumed fit's seconds include those of the epochs it read back
            trial.set_user_attr("seconds", round(time.perf_counter() - t0 + getattr(model, "resumed_seconds_", 0.0), 2))
        if not np.isfinite(value):
            raise FloatingPointError(f"{name} {params}: validation NDCG@10 is {value}")
        if value > best["value"]:
            best.update(value=value, model=model, params=params)
        return value

    def callback(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        _tidy_states(study, states, name, run_seed)
        if on_trial is not None and "repeat_of" not in frozen.user_attrs:
            on_trial(_trial_dict(frozen))

    for _ in range(4 * n):  # repeated settings are not counted: draw until the budget is spent (or give up)
        remaining = n - len(_spent(study))
        if remaining <= 0:
            break
        study.optimize(objective, n_trials=remaining, callbacks=[callback],
                       catch=FAILURES)
    trials = [_trial_dict(t) for t in _spent(study)]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        raise TuningFailed(name, len(trials), sorted({t["error"] for t in trials if t.get("error")}))
    top = max(complete, key=lambda t: t.value)
    # the best trial's model, when this process trained it (else the caller fits that setting again)
    model = best["model"] if best["model"] is not None and best.get("params") == top.params else None
    # machine time: every trial that ran, a repeated setting's too (one answered from the journal took 0 s)
    ran = [t for t in study.get_trials(deepcopy=False, states=SPENT) if not t.user_attrs.get("interrupted")]
    return TuningResult(params=dict(top.params), valid_ndcg=float(top.value), trials=trials,
                        seconds=float(sum(t.user_attrs.get("seconds") or 0.0 for t in ran)), model=model)


def study_name(name: str, space: dict[str, list], storage) -> str:
    """The model's study in ``storage``: ``name``, unless that study's trials were drawn from another space
    (the space was changed since): then a study of this space's own, ``name@<fingerprint>``, so that old
    trials neither count against the new budget nor break the sampler."""
    try:
        old = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return name
    wanted = {k: optuna.distributions.CategoricalDistribution(v) for k, v in space.items()}
    if all(t.distributions == wanted for t in old.get_trials(deepcopy=False) if t.distributions):
        return name
    fingerprint = hashlib.sha1(json.dumps(space, sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}@{fingerprint}"


def _tidy_states(study: optuna.Study, states: Path | None, name: str, seed: int) -> None:
    """Remove the training states no later run reads: keep the best finished trial's and those of trials to come."""
    if states is None or not Path(states).exists():
        return
    keep = [t.params for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        keep.append(max(complete, key=lambda t: t.value).params)
    kept = {state_path(states, name, p, seed) for p in keep}
    for path in Path(states).glob(f"{name}-seed{seed}-*.pt"):
        if path not in kept:
            path.unlink(missing_ok=True)


def _spent(study: optuna.Study) -> list:
    """The trials that count against the budget: finished, pruned or failed, but not interrupted by a stop and
    not a repeat of an earlier counted trial's setting."""
    out, seen = [], []
    for t in study.get_trials(deepcopy=False, states=SPENT):
        if not t.user_attrs.get("interrupted") and t.params not in seen:
            out.append(t)
            seen.append(t.params)
    return out


def _trial_dict(t: optuna.trial.FrozenTrial) -> dict:
    out = {"number": t.number, "state": t.state.name, "params": dict(t.params),
           f"valid_{SELECT_ON}": t.value if t.state == TrialState.COMPLETE else None,
           "seconds": t.user_attrs.get("seconds")}
    if t.state == TrialState.PRUNED and t.intermediate_values:
        step = max(t.intermediate_values)
        out["pruned_at_epoch"], out[f"last_valid_{SELECT_ON}"] = step, t.intermediate_values[step]
    if t.state == TrialState.FAIL:
        out["error"] = t.user_attrs.get("error") or ("interrupted" if t.user_attrs.get("interrupted") else "")
    return out

