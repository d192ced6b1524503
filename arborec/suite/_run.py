"""Run the suite: datasets x models x seeds, tuned on validation, test read once per final run; resumable."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arborec.data import leave_one_out, load_prepared, private_tmp
from arborec.diagnostics import ConfigError, logger
from arborec.evaluate import COLD_SLICE, evaluate, result_record, save_ranks, slice_masks
from arborec.recommenders import make_model
from arborec.sequential import resuming
from arborec.suite._config import ABLATIONS, AFTER_TRAINING, DATASETS, EVAL_EVERY, OURS, SPACES
from arborec.suite._tuning import TuningFailed, TuningResult, grid_size, state_path, tune_model


class RecordStore:
    """The finished runs of one dataset: ``<out>/<dataset>.json`` (a list of records, one per (model, seed))
    and each run's per-user test ranks in ``<out>/ranks/<dataset>/<model>-seed<k>.npy`` (for paired tests).

    The JSON is rewritten atomically after every run, so a stop loses at most the run in progress.
    """

    def __init__(self, out_dir: Path, dataset: str):
        self.out_dir = Path(out_dir)
        self.cold_path = self.out_dir / "ranks" / dataset / "cold_users.npy"  # which test users have a cold target
        self.path = self.out_dir / f"{dataset}.json"
        self.records: list[dict] = json.loads(self.path.read_text()) if self.path.exists() else []
        self.skipped_path = self.out_dir / f"{dataset}.skipped.json"
        self.skipped: dict[str, str] = json.loads(self.skipped_path.read_text()) if self.skipped_path.exists() else {}

    def skip(self, model: str, reason: str) -> None:
        """Note that ``model`` could not run on this dataset, and why (``<dataset>.skipped.json``; the report says it)."""
        self.skipped[model] = reason
        self._write_skipped()

    def get(self, model: str, seed: int) -> dict | None:
        return next((r for r in self.records if r["model"] == model and r["seed"] == seed), None)

    def of(self, model: str) -> list[dict]:
        return sorted((r for r in self.records if r["model"] == model), key=lambda r: r["seed"])

    def reload(self) -> None:
        """Re-read the records (another process may run other models of the same dataset side by side)."""
        self.records = json.loads(self.path.read_text()) if self.path.exists() else []

    def add(self, record: dict, ranks: np.ndarray) -> None:
        rel = Path("ranks") / record["dataset"] / f"{record['model']}-seed{record['seed']}.npy"
        save_ranks(ranks, self.out_dir / rel)
        record["test_ranks"] = rel.as_posix()  # 0-based rank of each test user's target, capped at 65535
        self.put(record)

    def put(self, record: dict) -> None:
        """Add ``record``, or replace the one of the same (model, seed); a model that runs is no longer skipped."""
        self.reload()
        self.records = [r for r in self.records if (r["model"], r["seed"]) != (record["model"], record["seed"])]
        self.records.append(record)
        self._write()
        if self.skipped.pop(record["model"], None) is not None:
            self._write_skipped()

    def _write_skipped(self) -> None:
        self.skipped_path.parent.mkdir(parents=True, exist_ok=True)
        self.skipped_path.write_text(json.dumps(self.skipped, indent=1) + "\n")

    def drop(self, model: str) -> None:
        """Forget every run of ``model`` (its chosen setting changed: every seed runs again)."""
        self.reload()
        for r in self.of(model):
            (self.out_dir / r["test_ranks"]).unlink(missing_ok=True)
        self.records = [r for r in self.records if r["model"] != model]
        self._write()

    def _write(self) -> None:
        tmp = private_tmp(self.path)  # another process may write the same file (other models, side by side)
        tmp.write_text(json.dumps(self.records, indent=1, default=_jsonable) + "\n")
        os.replace(tmp, self.path)

    def keep_cold_users(self, mask: np.ndarray) -> None:
        """Keep which test users' targets are cold (the same for every model on the split), for paired cold-item
        figures in the report."""
        if not self.cold_path.exists():
            self.cold_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(self.cold_path, np.asarray(mask, dtype=bool))

    def cold_users(self) -> np.ndarray | None:
        return np.load(self.cold_path) if self.cold_path.exists() else None

    def ranks(self, record: dict) -> np.ndarray:
        return np.load(self.out_dir / record["test_ranks"]).astype(np.int64)


def _jsonable(x):
    return x.tolist() if hasattr(x, "tolist") else str(x)


@dataclass
class Progress:
    """Counts work units (tuning trials, seed runs) and logs each with an ETA from this run's pace."""

    total: int
    done: int = 0
    started: float = field(default_factory=time.perf_counter)
    finished_here: int = 0

    def step(self, message: str, n: int = 1) -> None:
        self.done += n
        self.finished_here += n
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.finished_here * max(self.total - self.done, 0)
        logger.info("[%d/%d units, %s elapsed, ETA ~%s] %s", self.done, self.total, _hms(elapsed), _hms(eta), message)

    def skip(self, n: int) -> None:
        self.done += n


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


@dataclass
class SuitePlan:
    """What to run. ``seeds``: the seeds of arborec and of the ``n_seeded_others`` other models with the best
    validation NDCG@10 on the tuning seed (``seeds[0]``); every other model runs on the tuning seed only.
    ``stop_after`` (seconds) is checked between trials and runs."""

    datasets: list[str]
    models: list[str]
    out_dir: Path
    data_dir: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    n_seeded_others: int = 2
    budget: int | None = None  # trials per model; None: the dataset's own budget (the same for every model)
    device: str = "cpu"
    stop_after: float | None = None  # seconds; checked between units
    ablations: list[str] = field(default_factory=list)  # names of ABLATIONS, run after arborec on every seed

    def validate(self) -> None:
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown:
            raise ConfigError(f"unknown suite dataset(s) {unknown}; the suite has {sorted(DATASETS)}")
        unknown = [m for m in self.models if m not in SPACES]
        if unknown:
            raise ConfigError(f"unknown suite model(s) {unknown}; the suite has {list(SPACES)}")
        if not self.seeds:
            raise ConfigError("seeds: at least one seed is needed")
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown:
            raise ConfigError(f"unknown ablation(s) {unknown}; the suite has {list(ABLATIONS)}")

    def budget_of(self, dataset: str) -> int:
        return self.budget or DATASETS[dataset].budget


class StopRequested(Exception):
    """The suite's time limit passed; rerunning the same command continues."""


def run_suite(plan: SuitePlan, command: str = "") -> None:
    """Run (or continue) every dataset of ``plan``: tune each model on ``seeds[0]``, evaluate the chosen
    setting on test once per seed, then write ``<out>/<dataset>.json`` and the report."""
    from arborec.suite._report import write_report

    plan.validate()
    t_stop = None if plan.stop_after is None else time.perf_counter() + plan.stop_after
    n_extra = len(plan.seeds) - 1
    units = sum(sum(min(plan.budget_of(d), grid_size(SPACES[m])) + 1 for m in plan.models)
                + n_extra * (1 + plan.n_seeded_others) + len(plan.seeds) * len(plan.ablations) for d in plan.datasets)
    progress = Progress(total=units)
    try:
        for name in plan.datasets:
            _run_dataset(name, plan, progress, command, t_stop)
    finally:
        write_report(plan.out_dir)


@dataclass
class _Context:
    """What every run of one dataset shares: the plan, the dataset's spec, its data and split, its records."""
    plan: SuitePlan
    spec: object
    data: object
    split: object
    store: RecordStore
    command: str


def _run_dataset(name: str, plan: SuitePlan, progress: Progress, command: str, t_stop: float | None) -> None:
    spec = DATASETS[name]
    data = load_prepared(name, data_dir=plan.data_dir)
    split = leave_one_out(data)
    store = RecordStore(plan.out_dir, data.name)
    ctx = _Context(plan, spec, data, split, store, command)
    store.keep_cold_users(slice_masks(split, "test")[COLD_SLICE])
    tune_seed = plan.seeds[0]
    logger.info("suite %s: %d users, %d items; models %s; epoch cap %d", name, split.n_users, split.n_items,
                ", ".join(plan.models), spec.max_epochs)

    def check_time() -> None:
        if t_stop is not None and time.perf_counter() > t_stop:
            raise StopRequested(f"time limit reached during {name}; rerun the same command to continue")

    chosen: dict[str, dict] = {}
    for model in plan.models:  # -- 1. tune on the tuning seed, then test that setting once
        n_trials = min(plan.budget_of(name), grid_size(SPACES[model]))
        done = store.get(model, tune_seed)
        if done is not None and distinct_settings(done) >= n_trials:
            chosen[model] = done["tuning"]["chosen"]
            progress.skip(n_trials + 1)
            continue
        check_time()
        fixed = _fixed(model, spec.max_epochs, tune_seed, plan.device)
        def on_trial(t: dict, m: str = model) -> None:
            progress.step(f"{name} {m} trial {t['number'] + 1}: {t['state'].lower()}, valid ndcg@10 "
                          f"{_fmt(t.get('valid_ndcg@10') or t.get('last_valid_ndcg@10'))} ({t['seconds'] or 0:.0f}s)")
            check_time()  # a stop between trials: the finished ones are in the journal

        try:
            result = tune_model(model, SPACES[model], fixed, split, data,
                                plan.out_dir / "studies" / f"{data.name}.log", budget=plan.budget_of(name),
                                seed=tune_seed, on_trial=on_trial, states=_states(ctx))
        except TuningFailed as exc:  # every trial failed (e.g. a text model on a catalogue without text)
            logger.warning("suite %s: %s is left out: %s", name, model, exc)
            store.skip(model, "; ".join(exc.errors) or str(exc))
            progress.skip(n_trials + 1)
            continue
        chosen[model] = result.params
        if done is not None and result.params == done["tuning"]["chosen"]:
            # a tuning short of its budget (a repeated setting counted once) was topped up and chose the same:
            # the runs stand; the record now lists every trial
            spent_before = done["tuning"].get("seconds", 0)
            done["machine_seconds"] = round(done["machine_seconds"] + result.seconds - spent_before, 1)
            done["tuning"].update(trials=result.trials, seconds=round(result.seconds, 1))
            store.put(done)
            progress.step(f"{name} {model}: tuning topped up, same setting")
            continue
        if done is not None:
            store.drop(model)  # the topped-up tuning chose another setting: every seed runs again
        _final_run(ctx, model, result.params, tune_seed, result)
        progress.step(f"{name} {model} seed {tune_seed}: chosen {result.params}")

    # -- 2. more seeds for arborec and the strongest other models by validation, among every model tuned on
    # this dataset so far (also by another process running other models side by side)
    store.reload()
    tuned = {r["model"]: r["tuning"]["chosen"] for r in store.records if r["seed"] == tune_seed}
    chosen.update(tuned)
    others = sorted((m for m in tuned if m != OURS and m in SPACES and "seed" in make_model(m).get_params()),
                    key=lambda m: -store.get(m, tune_seed)["valid"]["metrics"]["ndcg@10"])
    seeded = ([OURS] if OURS in tuned else []) + others[:plan.n_seeded_others]
    seeded = [m for m in seeded if m in plan.models]  # processes side by side, each with its own models, never collide
    for model in seeded:
        for seed in plan.seeds[1:]:
            store.reload()
            if store.get(model, seed) is not None:
                progress.skip(1)
                continue
            check_time()
            _final_run(ctx, model, chosen[model], seed)
            progress.step(f"{name} {model} seed {seed}")

    # -- 3. ablations: arborec's chosen setting with one part switched off, on every seed
    ours = store.get(OURS, tune_seed)
    for ablation in plan.ablations:
        for seed in plan.seeds:
            store.reload()
            if ours is None or store.get(ablation, seed) is not None:
                progress.skip(1)
                continue
            check_time()
            _final_run(ctx, ablation, ours["tuning"]["chosen"], seed)
            progress.step(f"{name} {ablation} seed {seed}")
    if plan.ablations and ours is None:
        logger.warning("suite %s: ablations need arborec's tuned record first (run --models arborec)", name)


def _states(ctx: _Context) -> Path:
    """The folder of the dataset's unfinished fits' training states (a stopped fit continues from its state)."""
    return ctx.plan.out_dir / "states" / ctx.data.name


def distinct_settings(record: dict) -> int:
    """How many distinct settings the record's tuning tried (a repeated setting counts once)."""
    return len({json.dumps(t["params"], sort_keys=True) for t in record["tuning"].get("trials", [])})


def _fixed(model: str, max_epochs: int, seed: int, device: str) -> dict:
    """The settings every model shares on a dataset, for those of them the model has (an ablation: also the
    switches it turns off)."""
    shared = {"max_epochs": max_epochs, "eval_every": EVAL_EVERY, "seed": seed, "device": device, "verbose": False}
    have = make_model(OURS if model in ABLATIONS else model).get_params()
    return {k: v for k, v in shared.items() if k in have} | ABLATIONS.get(model, {})


#: fitted attributes a model chose by itself on validation (arborec's "auto" settings): kept in the record
CHOSEN_AFTER_FIT = ("max_len_", "regime_", "has_text_", "has_tree_", "tree_in_items_", "text_weight_", "pointer_weight_",
                    "pointer_temperature_", "score_weight_scores_", "pointer_scores_", "defaults_")


def _final_run(ctx: _Context, model: str, params: dict, seed: int, tuning: TuningResult | None = None) -> None:
    """Fit ``params`` with ``seed`` (or take the model the tuning already fitted), evaluate valid and test once.
    For arborec, also the ablations of ``plan`` that change only its after-training choices, from this fit."""
    t0 = time.perf_counter()
    fitted = tuning.model if tuning is not None else None
    state = state_path(_states(ctx), model, params, seed)
    if fitted is None:  # a later seed, or a tuning that finished in an earlier process: fit the setting again
        fitted = make_model(OURS if model in ABLATIONS else model, **_fixed(model, ctx.spec.max_epochs, seed, ctx.plan.device),
                            **params)
        resuming(fitted, state).fit(ctx.split, ctx.data)  # continues a stopped fit (or reads a finished trial's)
        earlier = getattr(fitted, "resumed_seconds_", 0.0)  # the epochs read back from a stopped (or finished) fit
        fit_s = time.perf_counter() - t0 + earlier
        if tuning is None:  # a later seed's earlier epochs are this record's machine time (a tuning counts its trials')
            t0 -= earlier
    else:  # the tuning trial's own fit (its seconds include one validation pass)
        fit_s = max(t["seconds"] or 0.0 for t in tuning.trials if t["params"] == params and t["state"] == "COMPLETE")
    _store_run(ctx, model, fitted, params, seed, tuning, fit_s, t0)
    state.unlink(missing_ok=True)
    if model != OURS:
        return
    for ablation in (a for a in ctx.plan.ablations if a in AFTER_TRAINING):
        ctx.store.reload()
        if ctx.store.get(ablation, seed) is None:
            t1 = time.perf_counter()
            variant = fitted.with_score_knobs(ctx.split, **ABLATIONS[ablation])
            _store_run(ctx, ablation, variant, params, seed, None, fit_s, t1,
                       derived=f"{OURS} seed {seed}'s fitted network (training does not read {ABLATIONS[ablation]})")


def _store_run(ctx: _Context, model: str, fitted, params: dict, seed: int, tuning: TuningResult | None, fit_s: float,
               t0: float, derived: str | None = None) -> None:
    """Evaluate ``fitted`` on valid and on test (once) and store the record and its test ranks."""
    plan, spec, data, split = ctx.plan, ctx.spec, ctx.data, ctx.split
    valid = evaluate(fitted, split, "valid")
    t1 = time.perf_counter()
    test = evaluate(fitted, split, "test")
    extra = {"suite": {"epoch_cap": spec.max_epochs, "eval_every": EVAL_EVERY, "budget": plan.budget_of(data.name),
                       "anchors": [a.__dict__ for a in spec.anchors]},
             "tuning": {"chosen": params, "space": SPACES[OURS if model in ABLATIONS else model], "seed": plan.seeds[0],
                        "selected_on": "valid ndcg@10" + (f" (arborec's tuning; then {ABLATIONS[model]})"
                                                          if model in ABLATIONS else ""),
                        **({"trials": tuning.trials, "seconds": round(tuning.seconds, 1)} if tuning else {})},
             "machine_seconds": round((tuning.seconds if tuning else 0.0) + time.perf_counter() - t0, 1)}
    if derived:
        extra["derived_from"] = derived  # fit_seconds are that fit's; machine_seconds this record's own
    for attr in ("best_epoch_", "epoch_seconds_"):
        if hasattr(fitted, attr):
            extra[attr.rstrip("_")] = getattr(fitted, attr)
    chosen_after = {a.rstrip("_"): getattr(fitted, a) for a in CHOSEN_AFTER_FIT if hasattr(fitted, a)}
    if chosen_after:  # what the model chose by itself on validation (its "auto" settings), for the report
        extra["chosen_in_fit"] = chosen_after
    record = result_record(dataset=data.name, stats=data.stats, split_hash=split.fingerprint(), model=model,
                           params=fitted.get_params(), seed=seed, valid=valid.to_dict(), test=test.to_dict(),
                           fit_seconds=fit_s, eval_seconds=time.perf_counter() - t1, command=ctx.command, extra=extra)
    ctx.store.add(record, test.ranks)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"
