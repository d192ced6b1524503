"""The benchmark suite: its statistics on hand-computed cases, its resume logic, and its report."""

import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from arborec.evaluate import paired_comparison, per_user_ndcg, seed_interval
from arborec.suite import SPACES, RecordStore, StopRequested, SuitePlan, run_suite, summarize, tune_model, write_report
from arborec.suite import _config
from arborec.model import _text_score


def test_seed_interval_hand_computed():
    mean, half = seed_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302652729749464 / math.sqrt(3))  # t(0.975, 2) * sd 1 / sqrt(3)
    assert math.isnan(seed_interval([0.5])[1])


def test_per_user_ndcg_hand_computed():
    np.testing.assert_allclose(per_user_ndcg(np.array([0, 1, 9, 10])), [1.0, 1 / math.log2(3), 1 / math.log2(11), 0.0])


def test_paired_comparison_hand_computed():
    a = np.array([0.5, 1.0, 0.0, 1.0, 0.3])
    b = np.array([0.2, 0.5, 0.0, 0.6, 0.1])
    # d = [.3, .5, 0, .4, .2]: mean .28, sample sd sqrt(.148 / 4), t = mean / (sd / sqrt 5) with 4 d.o.f.
    t = 0.28 / (math.sqrt(0.148 / 4) / math.sqrt(5))
    c = paired_comparison(a, b)
    assert c.diff == pytest.approx(0.28)
    assert c.p_value == pytest.approx(2 * stats.t.sf(t, 4))
    assert c.p_value < 0.05 and c.verdict == "win"
    assert c.relative == pytest.approx(0.28 / b.mean())
    assert 0.0 <= c.ci_low <= 0.28 <= c.ci_high <= 0.5  # the bootstrap interval holds the mean, inside the range of d
    swapped = paired_comparison(b, a)
    assert swapped.verdict == "loss" and swapped.diff == pytest.approx(-0.28)
    assert paired_comparison(a, a).verdict == "tie"
    with pytest.raises(ValueError, match="same users"):
        paired_comparison(a, b[:4])


@pytest.fixture
def tiny_suite(monkeypatch):
    """The generated dataset as a suite dataset, with two cheap models and small spaces."""
    monkeypatch.setitem(_config.DATASETS, "synthetic", _config.SuiteDataset("synthetic", 4))
    monkeypatch.setitem(SPACES, "sasrec", {"dropout": [0.2, 0.5]})
    monkeypatch.setattr("arborec.suite._config.EVAL_EVERY", 1)
    monkeypatch.setattr("arborec.suite._run.EVAL_EVERY", 1)


def _fits(monkeypatch):
    """Count the fits of every model the suite makes."""
    import arborec.suite._run as run
    import arborec.suite._tuning as tuning

    calls = []
    real = run.make_model

    def counting(name, **params):
        model = real(name, **params)
        fit = model.fit

        def fit_and_count(*a, **k):
            calls.append((name, params.get("seed")))
            return fit(*a, **k)

        model.fit = fit_and_count
        return model

    monkeypatch.setattr(run, "make_model", counting)
    monkeypatch.setattr(tuning, "make_model", counting)
    return calls


def test_suite_runs_resumes_and_never_refits_a_finished_run(tiny_suite, tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    fits = _fits(monkeypatch)
    plan = SuitePlan(datasets=["synthetic"], models=["mostpop", "sasrec"], out_dir=tmp_path / "suite",
                     seeds=(0, 1), n_seeded_others=1, budget=2, stop_after=0)
    with pytest.raises(StopRequested):  # a time limit is checked before any work starts
        run_suite(plan)
    assert fits == []
    plan.stop_after = None
    run_suite(plan)
    store = RecordStore(tmp_path / "suite", "synthetic")
    assert sorted((r["model"], r["seed"]) for r in store.records) == [("mostpop", 0), ("sasrec", 0), ("sasrec", 1)]
    # two tuning trials per setting grid point; the best trial's model is tested as is; seed 1 is one more fit
    assert sorted(fits) == [("mostpop", None), ("sasrec", 0), ("sasrec", 0), ("sasrec", 1)]
    sasrec0 = store.get("sasrec", 0)
    assert len(sasrec0["tuning"]["trials"]) == 2 and "test" not in json.dumps(sasrec0["tuning"])
    assert sasrec0["tuning"]["chosen"]["dropout"] in (0.2, 0.5)
    assert store.get("sasrec", 1)["params"]["dropout"] == sasrec0["tuning"]["chosen"]["dropout"]
    assert len(store.ranks(sasrec0)) == sasrec0["test"]["n_users"]
    before = (tmp_path / "suite" / "synthetic.json").read_text()
    fits.clear()
    run_suite(plan)  # everything is finished: nothing is fitted again, nothing changes
    assert fits == []
    assert (tmp_path / "suite" / "synthetic.json").read_text() == before
    report = (tmp_path / "suite.md").read_text()
    assert "## synthetic" in report and "| sasrec | 2 |" in report and "mostpop | 1 (one seed)" in report


def test_side_by_side_processes_seed_only_their_own_models_within_the_dataset_budget(tiny_suite, tmp_path,
                                                                                    monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setitem(_config.DATASETS, "synthetic", _config.SuiteDataset("synthetic", 4, budget=1))
    fits = _fits(monkeypatch)
    out = tmp_path / "suite"
    run_suite(SuitePlan(datasets=["synthetic"], models=["sasrec"], out_dir=out, seeds=(0,)))
    assert fits == [("sasrec", 0)]  # the dataset's own budget: one trial
    fits.clear()
    # another process with other models: sasrec is the best seeded model, but its seeds are the other process's
    run_suite(SuitePlan(datasets=["synthetic"], models=["mostpop"], out_dir=out, seeds=(0, 1), n_seeded_others=1))
    assert fits == [("mostpop", None)]
    store = RecordStore(out, "synthetic")
    assert store.get("sasrec", 1) is None and store.get("sasrec", 0)["suite"]["budget"] == 1
    assert "| sasrec | 1 (one seed) |" in (tmp_path / "suite.md").read_text()


def test_a_tuning_short_of_its_budget_is_topped_up_and_runs_again_only_if_the_choice_changes(tiny_suite, tmp_path,
                                                                                              monkeypatch):
    import torch

    torch.set_num_threads(1)
    out = tmp_path / "suite"
    plan = SuitePlan(datasets=["synthetic"], models=["sasrec"], out_dir=out, seeds=(0, 1), budget=1)
    run_suite(plan)
    store = RecordStore(out, "synthetic")
    first = store.get("sasrec", 0)
    assert len(first["tuning"]["trials"]) == 1 and store.get("sasrec", 1) is not None
    fits = _fits(monkeypatch)
    plan.budget = 2
    run_suite(plan)  # the record's tuning is one trial short: one more setting is tried
    store.reload()
    now = store.get("sasrec", 0)
    trials = now["tuning"]["trials"]
    assert len(trials) == 2 and trials[0]["params"] != trials[1]["params"]
    best = max(trials, key=lambda t: t["valid_ndcg@10"])
    assert now["tuning"]["chosen"] == best["params"]
    if best["number"] == trials[0]["number"]:  # the same choice: the runs stand, nothing else is fitted
        assert fits == [("sasrec", 0)] and now["test"] == first["test"]
    else:  # another choice: the tuned model is tested and seed 1 runs again
        assert fits == [("sasrec", 0), ("sasrec", 1)]
        assert store.get("sasrec", 1)["params"]["dropout"] == best["params"]["dropout"]


def test_an_interrupted_trial_is_redone_not_counted(tiny_suite, tmp_path, synthetic):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    data, split = synthetic
    journal = tmp_path / "studies.log"
    study = optuna.create_study(study_name="sasrec", storage=JournalStorage(JournalFileBackend(str(journal))),
                                direction="maximize")
    study.ask()  # a trial that started and never finished: the process was stopped
    result = tune_model("sasrec", {"dropout": [0.2, 0.5]}, {"max_epochs": 2, "eval_every": 1}, split, data,
                        journal, budget=2)
    assert len(result.trials) == 2 and all(t["state"] == "COMPLETE" for t in result.trials)
    assert result.model is not None and result.valid_ndcg == max(t["valid_ndcg@10"] for t in result.trials)


def test_a_trial_stopped_mid_fit_continues_from_its_state_and_only_the_best_state_is_kept(tiny_suite, tmp_path,
                                                                                          synthetic, caplog):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from arborec.baselines import SASRec
    from arborec.suite._tuning import state_path

    data, split = synthetic
    journal, states = tmp_path / "studies.log", tmp_path / "states"
    space = {"dropout": [0.2, 0.3, 0.5], "n_layers": [1, 2]}  # TPE: a fresh draw would likely be another setting
    fixed = {"max_epochs": 4, "eval_every": 1, "seed": 0, "hidden_size": 16, "max_len": 20}
    study = optuna.create_study(study_name="sasrec", storage=JournalStorage(JournalFileBackend(str(journal))),
                                direction="maximize")
    trial = study.ask()  # a trial the process was stopped in, after its first validation
    params = {k: trial.suggest_categorical(k, v) for k, v in space.items()}
    stopped = SASRec(**fixed, **params)
    stopped.resume_path = state_path(states, "sasrec", params, 0)

    def stop(epoch, ndcg):
        if epoch == 2:
            raise KeyboardInterrupt
    stopped.on_validation = stop
    with pytest.raises(KeyboardInterrupt):
        stopped.fit(split, data)

    with caplog.at_level("INFO", logger="arborec"):
        result = tune_model("sasrec", space, fixed, split, data, journal, budget=2, states=states)
    assert result.trials[0]["params"] == params and result.trials[0]["state"] == "COMPLETE"
    assert "resumed from" in caplog.text and "after epoch 1" in caplog.text
    # the best finished trial (the second may be pruned at its last epoch: it then has no validation figure)
    best = max((t for t in result.trials if t["state"] == "COMPLETE"), key=lambda t: t["valid_ndcg@10"])
    assert list(states.iterdir()) == [state_path(states, "sasrec", best["params"], 0)]  # the others' removed
    refit = SASRec(**fixed, **best["params"])  # the final run of the chosen setting reads it: nothing to train
    refit.resume_path = state_path(states, "sasrec", best["params"], 0)
    refit.fit(split, data)
    assert refit.resumed_epochs_ == len(refit.history_) == len(result.model.history_)
    torch_equal = [np.array_equal(a.numpy(), b.numpy()) for a, b in
                   zip(refit.module_.state_dict().values(), result.model.module_.state_dict().values())]
    assert all(torch_equal)


def test_a_resumed_study_draws_new_settings_and_a_repeated_setting_is_not_counted(tiny_suite, tmp_path, synthetic,
                                                                                   monkeypatch):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    data, split = synthetic
    journal, fits = tmp_path / "studies.log", _fits(monkeypatch)
    space = {"dropout": [0.2, 0.3, 0.5], "n_layers": [1, 2]}  # 6 settings, budget 2 then 4: TPE, not a grid
    fixed = {"max_epochs": 1, "eval_every": 1}
    first = tune_model("sasrec", space, fixed, split, data, journal, budget=2)
    study = optuna.load_study(study_name="sasrec", storage=JournalStorage(JournalFileBackend(str(journal))))
    study.enqueue_trial(first.trials[0]["params"])  # the next trial repeats the first setting
    fits.clear()
    result = tune_model("sasrec", space, fixed, split, data, journal, budget=4)
    settings = [tuple(sorted(t["params"].items())) for t in result.trials]
    assert len(result.trials) == 4 and len(set(settings)) == 4  # four distinct settings counted
    assert len(fits) == 2  # the repeat was answered from the journal; two new settings were fitted
    assert any("repeat_of" in t.user_attrs for t in study.trials)


def test_a_changed_space_gets_a_study_of_its_own(tiny_suite, tmp_path, synthetic):
    data, split = synthetic
    journal, fixed = tmp_path / "studies.log", {"max_epochs": 1, "eval_every": 1}
    tune_model("sasrec", {"dropout": [0.2, 0.5]}, fixed, split, data, journal, budget=2)
    result = tune_model("sasrec", {"dropout": [0.3, 0.5]}, fixed, split, data, journal, budget=2)  # space changed
    assert [t["state"] for t in result.trials] == ["COMPLETE", "COMPLETE"]  # not failed, and not the old trials
    assert {t["params"]["dropout"] for t in result.trials} == {0.3, 0.5}
    again = tune_model("sasrec", {"dropout": [0.3, 0.5]}, fixed, split, data, journal, budget=2)
    assert again.trials == result.trials  # the same space resumes its own study


def _record(model, seed, ranks, valid):
    return {"dataset": "toy", "model": model, "seed": seed, "split_hash": "h", "fit_seconds": 1.0,
            "valid": {"metrics": {"ndcg@10": valid}},
            "test": {"n_users": len(ranks), "metrics": {"ndcg@10": float(per_user_ndcg(ranks).mean()),
                                                         "recall@10": float((ranks < 10).mean())},
                     "slices": {"cold_items(<=5 train events)": {"n_users": 2, "metrics": {"recall@10": 0.5}}}},
            "suite": {"epoch_cap": 4, "eval_every": 2, "budget": 8}, "tuning": {"seed": 0, "chosen": {}}}


def test_paired_ratio_and_the_reports_cold_item_ratio(tmp_path, monkeypatch):
    from arborec.evaluate import paired_ratio

    ratio, low, high = paired_ratio([1, 0, 1, 1, 1, 0] * 50, [1, 0, 0, 1, 0, 0] * 50)
    assert ratio == pytest.approx(2.0)  # 4 hits against 2 in every group of six users
    assert 1.0 <= low < 2.0 < high < 4.0  # a hits wherever b does: no resample's ratio is below 1
    assert paired_ratio([1, 0, 1], [1, 0, 0])[2] == np.inf  # a resample without b's hit is an infinite ratio
    with pytest.raises(ValueError, match="nonzero"):
        paired_ratio([1, 0], [0, 0])
    store = RecordStore(tmp_path / "suite", "toy")
    monkeypatch.setattr("arborec.suite._report.COLD_MIN_USERS", 3)
    store.keep_cold_users(np.array([True, True, True, False, False]))
    store.keep_cold_users(np.array([False] * 5))  # kept once: the split decides it, not a later run
    ours = [np.array([0, 4, 30, 1, 1]), np.array([0, 40, 3, 1, 1])]  # cold hits 1, .5, .5 (seed means)
    sas = [np.array([0, 50, 50, 1, 1]), np.array([20, 50, 50, 1, 1])]  # cold hits .5, 0, 0
    for seed in (0, 1):
        store.add(_record("arborec", seed, ours[seed], 0.5), ours[seed])
        store.add(_record("sasrec", seed, sas[seed], 0.4), sas[seed])
    c = summarize(store)["cold_ratio"]
    assert c["ratio"] == pytest.approx(4.0) and c["n_users"] == 3 and c["rival"] == "sasrec"
    assert "Cold-item Recall@10, arborec / sasrec: **4.00x**" in write_report(tmp_path / "suite").read_text()
    monkeypatch.setattr("arborec.suite._report.COLD_MIN_USERS", 4)  # too few cold users: no ratio
    assert "cold_ratio" not in summarize(store)


def test_report_compares_arborec_with_the_best_other_model_per_user(tmp_path):
    store = RecordStore(tmp_path / "suite", "toy")
    ours = [np.array([0, 0, 3, 20]), np.array([0, 1, 3, 20])]
    sas = [np.array([1, 5, 0, 20]), np.array([1, 5, 2, 20])]
    for seed in (0, 1):
        store.add(_record("arborec", seed, ours[seed], 0.5), ours[seed])
        store.add(_record("sasrec", seed, sas[seed], 0.4), sas[seed])
    store.add(_record("mostpop", 0, np.array([30, 30, 30, 30]), 0.1), np.array([30, 30, 30, 30]))
    summary = summarize(store)
    c = summary["comparisons"]["best other model (by validation)"]
    assert c["model"] == "sasrec" and summary["comparisons"]["best ID-only model (by validation)"]["model"] == "sasrec"
    expected = np.mean([per_user_ndcg(r) for r in ours], 0) - np.mean([per_user_ndcg(r) for r in sas], 0)
    assert c["diff"] == pytest.approx(expected.mean()) and c["n_users"] == 4
    assert summary["models"]["arborec"]["seeds"] == [0, 1]
    text = write_report(tmp_path / "suite").read_text()
    assert "arborec vs the best other model (by validation), **sasrec**" in text
    assert "one of the two has 2 seeds so far: a direction, not yet the 3-seed verdict" in text  # 2 seeds: no verdict yet


def test_the_report_checks_each_published_figure_against_the_models_that_implement_it(tmp_path, monkeypatch):
    store = RecordStore(tmp_path / "suite", "toy")
    ranks = {"sasrec": np.array([0, 20, 20, 20]), "sasrec-prefix": np.array([0, 0, 20, 20]),
             "arborec": np.array([0, 0, 0, 20])}  # per-user NDCG@10 means 0.25, 0.5, 0.75
    for model, r in ranks.items():
        for seed in ((0, 1) if model != "sasrec-prefix" else (0,)):
            store.add(_record(model, seed, r, 0.5), r)
    spec = _config.SuiteDataset("toy", 4, (_config.Anchor("SASRec", 0.9, 0.5, "a paper", ("sasrec", "sasrec-prefix")),
                                           _config.Anchor("LRURec", 0.9, 0.8, "a paper")))  # none of ours: no check
    monkeypatch.setitem(_config.DATASETS, "toy", spec)
    text = write_report(tmp_path / "suite").read_text()
    floor = 0.95 * 0.5
    assert (f"- Anchor check, published SASRec NDCG@10 0.5000 (reproduced at >= {floor:.4f}, within 5%): "
            "sasrec 0.2500 ± 0.0000 (below), sasrec-prefix 0.5000 (reproduced, one seed so far).") in text
    assert "published LRURec NDCG@10" not in text and text.count("Anchor check") == 1


def test_the_readme_results_section_is_the_report(tmp_path):
    from arborec.suite import update_readme

    store = RecordStore(tmp_path / "suite", "toy")
    ranks = np.array([0, 3, 20, 1])
    store.add({**_record("arborec", 0, ranks, 0.5), "code_version": "0.3.0+gabc1234"}, ranks)
    write_report(tmp_path / "suite")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Results\n\nintro\n\n<!-- suite results: start (arborec suite --readme) -->\nSTALE\n"
                      "<!-- suite results: end -->\n\n## Next\n")
    update_readme(readme, tmp_path / "suite")
    text = readme.read_text()
    assert "STALE" not in text and "### toy" in text and "| **arborec** 0.3.0 | 1 (one seed) |" in text  # its release
    assert text.index("intro") < text.index("### toy") < text.index("## Next")
    link = re.search(r"!\[toy[^]]*\]\(([^)]+)\)", text).group(1)  # the dataset's figure, relative to the README
    assert (readme.parent / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nested = tmp_path / "docs" / "README.md"  # a README elsewhere links the same file
    nested.parent.mkdir()
    nested.write_text(readme.read_text())
    update_readme(nested, tmp_path / "suite")
    assert (nested.parent / re.search(r"!\[toy[^]]*\]\(([^)]+)\)", nested.read_text()).group(1)).resolve() == \
        (readme.parent / link).resolve()
    update_readme(readme, tmp_path / "suite")  # rewriting is stable
    assert readme.read_text() == text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="marker"):
        update_readme(readme, tmp_path / "suite")


def test_every_suite_space_names_parameters_of_its_model():
    from arborec.recommenders import make_model

    for name, space in SPACES.items():
        params = make_model(name).get_params()
        assert set(space) <= set(params), (name, set(space) - set(params))
        assert all(len(v) >= 1 for v in space.values())


def test_a_time_limit_stops_between_trials_and_the_rerun_finishes_the_budget(tiny_suite, tmp_path, monkeypatch):
    import types

    import arborec.suite._run as run

    clock = {"now": 0.0}
    monkeypatch.setattr(run, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    import arborec.suite._tuning as tuning

    real_tune = tuning.tune_model

    def tune_then_late(*a, on_trial=None, **k):  # the clock passes the limit after the first trial
        def late(t):
            clock["now"] = 100.0
            on_trial(t)
        return real_tune(*a, on_trial=late, **k)

    monkeypatch.setattr(run, "tune_model", tune_then_late)
    plan = SuitePlan(datasets=["synthetic"], models=["sasrec"], out_dir=tmp_path / "suite", seeds=(0,),
                     budget=2, stop_after=10.0)
    with pytest.raises(StopRequested):
        run_suite(plan)
    assert RecordStore(tmp_path / "suite", "synthetic").records == []  # stopped inside the tuning
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "suite" / "studies" / "synthetic.log")))
    kept = optuna.load_study(study_name="sasrec", storage=storage).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(kept) == 1  # the finished trial is in the journal
    clock["now"], plan.stop_after = 0.0, None
    monkeypatch.setattr(run, "tune_model", real_tune)
    run_suite(plan)  # continues: one more trial, not two
    record = RecordStore(tmp_path / "suite", "synthetic").get("sasrec", 0)
    assert len(record["tuning"]["trials"]) == 2
    assert record["tuning"]["trials"][0]["params"] == kept[0].params  # the first trial was kept, not redone


def test_a_record_keeps_what_arborec_chose_by_itself_on_validation(tiny_suite, tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setitem(SPACES, "arborec", {"dropout": [0.3]})
    run_suite(SuitePlan(datasets=["synthetic"], models=["arborec"], out_dir=tmp_path / "suite", seeds=(0,),
                        budget=1))
    record = RecordStore(tmp_path / "suite", "synthetic").get("arborec", 0)
    chosen = record["chosen_in_fit"]
    assert chosen["pointer_weight"] in _text_score.POINTER_WEIGHTS
    assert chosen["text_weight"] in _text_score.TEXT_WEIGHTS and "path_weight" not in chosen
    assert chosen["max_len"] in (50, 100, 200) and chosen["defaults"].startswith("arborec defaults:")
    # the pointer setting it kept is the one whose validation figure the record reports
    kept = chosen["pointer_scores"][f"pointer {chosen['pointer_weight']}, temperature {chosen['pointer_temperature']}"]
    assert kept == pytest.approx(record["valid"]["metrics"]["ndcg@10"], rel=1e-9)
    assert chosen["regime"] in ("prefix", "every") and not chosen["tree_in_items"]  # text on: no tree in the table
    regime = "one prefix per target" if chosen["regime"] == "prefix" else "every position"
    assert (f"seed 0: window {chosen['max_len']}, {regime}, text on, interest tree built, text weight"
            in (tmp_path / "suite.md").read_text())


def test_an_ablation_runs_arborecs_chosen_setting_with_a_part_off_and_is_never_a_rival(tiny_suite, tmp_path,
                                                                                      monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setitem(SPACES, "arborec", {"dropout": [0.3, 0.5]})
    plan = SuitePlan(datasets=["synthetic"], models=["mostpop", "arborec"], out_dir=tmp_path / "suite", seeds=(0, 1),
                     budget=2, ablations=["arborec-no-text"])
    run_suite(plan)
    store = RecordStore(tmp_path / "suite", "synthetic")
    ours, ablated = store.get("arborec", 0), store.get("arborec-no-text", 0)
    assert store.get("arborec-no-text", 1) is not None
    assert ablated["params"]["use_text"] is False and ablated["params"]["pointer_weight"] == 0.0
    assert ablated["params"]["dropout"] == ours["tuning"]["chosen"]["dropout"]  # arborec's choice, not tuned again
    assert ablated["chosen_in_fit"]["text_weight"] == 0.0 and "tuning" in ablated and "trials" not in ablated["tuning"]
    summary = summarize(store)
    assert "arborec-no-text" not in summary["against_each"] and "arborec-no-text" in summary["ablations"]
    assert summary["comparisons"]["best other model (by validation)"]["model"] == "mostpop"
    report = (tmp_path / "suite.md").read_text()
    assert "| text (use_text=False, text_weight=0.0, pointer_weight=0.0) | 2 |" in report
    assert "| arborec-no-text |" not in report
    with pytest.raises(Exception, match="unknown ablation"):
        SuitePlan(datasets=["synthetic"], models=["arborec"], out_dir=tmp_path, ablations=["no-such"]).validate()


def test_suite_help_names_every_ablation():
    from arborec.cli import build_parser
    from arborec.suite._config import ABLATIONS

    suite = build_parser()._subparsers._group_actions[0].choices["suite"]
    (option,) = [a for a in suite._actions if "--ablations" in a.option_strings]
    for name in ABLATIONS:
        assert f"{name} (" in option.help, name


def test_the_no_pointer_ablation_is_read_from_arborecs_own_fit_and_equals_a_refit(tiny_suite, tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setitem(SPACES, "arborec", {"dropout": [0.3]})
    calls = _fits(monkeypatch)
    run_suite(SuitePlan(datasets=["synthetic"], models=["arborec"], out_dir=tmp_path / "suite", seeds=(0, 1),
                        budget=1, ablations=["arborec-no-pointer"]))
    assert [name for name, _ in calls] == ["arborec", "arborec"]  # one fit per seed, none for the ablation
    store = RecordStore(tmp_path / "suite", "synthetic")
    for seed in (0, 1):
        ours, ablated = store.get("arborec", seed), store.get("arborec-no-pointer", seed)
        assert ablated["chosen_in_fit"]["pointer_weight"] == 0.0 and "derived_from" in ablated
        # the same text weight, and the validation figure the pointer's selection had for "no pointer"
        assert ablated["chosen_in_fit"]["text_weight"] == ours["chosen_in_fit"]["text_weight"]
        no_pointer = [v for k, v in ours["chosen_in_fit"]["pointer_scores"].items() if k.startswith("pointer 0.0,")]
        assert ablated["valid"]["metrics"]["ndcg@10"] == pytest.approx(no_pointer[0], rel=1e-9)
    # what a fit of the ablation would give: the same test ranks (training does not read the pointer)
    derived = store.ranks(ablated)
    (tmp_path / "suite" / "synthetic.json").write_text(
        json.dumps([r for r in store.records if r["model"] != "arborec-no-pointer" or r["seed"] == 0]) + "\n")
    run_suite(SuitePlan(datasets=["synthetic"], models=["arborec"], out_dir=tmp_path / "suite", seeds=(0, 1),
                        budget=1, ablations=["arborec-no-pointer"]))
    assert [name for name, _ in calls[2:]] == ["arborec"]  # seed 1's ablation refitted by the ablation step
    refit = RecordStore(tmp_path / "suite", "synthetic")
    assert "derived_from" not in refit.get("arborec-no-pointer", 1)
    assert np.array_equal(refit.ranks(refit.get("arborec-no-pointer", 1)), derived)


def test_a_model_skipped_once_and_run_since_is_no_longer_reported_skipped(tmp_path):
    store = RecordStore(tmp_path / "suite", "toy")
    store.skip("sasrec", "tuning sasrec: no trial finished")
    store.skip("ease", "too many items")
    ranks = np.array([0, 4, 30, 1])
    store.add(_record("arborec", 0, ranks, 0.5), ranks)
    store.add(_record("sasrec", 0, ranks, 0.4), ranks)
    assert RecordStore(tmp_path / "suite", "toy").skipped == {"ease": "too many items"}  # kept on disk too
    report = write_report(tmp_path / "suite").read_text()
    assert "too many items" in report and "no trial finished" not in report


def test_a_store_of_its_own_writes_its_own_report_and_leaves_the_live_one(tmp_path):
    ranks = np.array([0, 3, 20, 1])
    for folder, ndcg in (("suite", 0.5), ("suite-0.4-staging", 0.25)):
        RecordStore(tmp_path / folder, "toy").add(_record("arborec", 0, ranks, ndcg), ranks)
    live = write_report(tmp_path / "suite")
    assert live == tmp_path / "suite.md"
    before = live.read_text()
    staged = write_report(tmp_path / "suite-0.4-staging")
    assert staged == tmp_path / "suite-0.4-staging.md" and live.read_text() == before
    assert "suite-0.4-staging/plots/toy.png" in staged.read_text() and "suite/plots/toy.png" in before


def test_the_report_opens_with_arborec_against_the_best_id_only_and_text_aware_models(tmp_path, monkeypatch):
    ranks = {"arborec": np.array([0, 0, 3, 20]), "sasrec": np.array([1, 5, 0, 20]),
             "bsarec": np.array([2, 30, 0, 20]), "sasrec-text": np.array([0, 9, 9, 20])}
    valid = {"arborec": 0.5, "sasrec": 0.4, "bsarec": 0.3, "sasrec-text": 0.35}
    for dataset, has_text in (("toy", True), ("toy-no-text", False)):
        monkeypatch.setitem(_config.DATASETS, dataset, _config.SuiteDataset(dataset, 4, has_text=has_text))
        store = RecordStore(tmp_path / "suite", dataset)
        for model, r in ranks.items():
            for seed in ((0, 1, 2) if model != "sasrec-text" else (0,)):
                store.add({**_record(model, seed, r, valid[model]), "dataset": dataset}, r)
    text = write_report(tmp_path / "suite").read_text()
    glance = text[text.index("## At a glance"):text.index("\n## toy")]
    row = next(line for line in glance.splitlines() if line.startswith("| toy |"))
    gain = np.mean(per_user_ndcg(ranks["arborec"])) / np.mean(per_user_ndcg(ranks["sasrec"])) - 1
    # the best ID-only model by validation is sasrec (0.4 > bsarec's 0.3), whatever their test figures
    assert f"| sasrec {np.mean(per_user_ndcg(ranks['sasrec'])):.4f} ± 0.0000: {gain:+.1%}" in row
    assert "| sasrec-text " in row and "(one seed)" in row  # the text-aware peer, on its one seed
    assert row.endswith("| mostpop, ease, gru4rec, sasrec-prefix, unisrec, unisrec-t, text-ft |")  # not run yet
    no_text = next(line for line in glance.splitlines() if line.startswith("| toy-no-text |"))
    assert "| no item text |" in no_text  # SASRec-text without text is an ID model: not "the text-aware peer"
    only_rivals = RecordStore(tmp_path / "rivals", "toy")
    only_rivals.add(_record("sasrec", 0, ranks["sasrec"], 0.4), ranks["sasrec"])
    assert "At a glance" not in write_report(tmp_path / "rivals").read_text()  # nothing to compare before arborec runs
