"""Set a model's suite runs on one dataset aside, so that a new version of it is tuned and run afresh.

    python benchmarks/archive_suite_model.py DATASET MODEL TO_DIR [--suite benchmarks/results/suite]
    python benchmarks/archive_suite_model.py DATASET MODEL LIVE_DIR --suite STAGING_DIR --merge

Moves the model's records (``<dataset>.json``) and test ranks to ``TO_DIR`` (e.g.
``benchmarks/results/suite-0.2``), copies the dataset's tuning journal there, and deletes the model's
studies from the live journal, so the next ``arborec suite`` run spends the model's whole tuning budget
again. Nothing is lost: the archive keeps every record, rank file and trial. arborec's ablations
(``arborec-no-text``...) go with it.

With ``--merge`` the runs go the other way: a model run in a store of its own (``arborec suite --out
STAGING_DIR``, e.g. a new version run beside the old one) joins the live store: its records and ranks move
in, and its studies are copied into the live journal (which keeps every other model's). The live store
must hold none of that model's runs or studies on the dataset: archive them first.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from arborec.suite._config import ABLATIONS, OURS


def _records(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def _runs_of(records: list[dict], model: str) -> list[dict]:
    """``model``'s records, with arborec's ablations when the model is arborec."""
    return [r for r in records if r["model"] == model or (model == OURS and r["model"] in ABLATIONS)]


def _studies_of(storage, model: str) -> list[str]:
    """The names of ``model``'s tuning studies in ``storage`` (``model`` and ``model@<space>``)."""
    return [s.study_name for s in optuna.get_all_study_summaries(storage)
            if s.study_name == model or s.study_name.startswith(f"{model}@")]


def archive(suite: Path, dataset: str, model: str, to_dir: Path) -> tuple[int, list[str]]:
    """(records moved, studies deleted)."""
    path = suite / f"{dataset}.json"
    records = _records(path)
    ours = _runs_of(records, model)
    archived_path = to_dir / f"{dataset}.json"
    archived = _records(archived_path)
    keys = {(r["model"], r["seed"]) for r in ours}
    archived = [r for r in archived if (r["model"], r["seed"]) not in keys] + ours
    to_dir.mkdir(parents=True, exist_ok=True)
    archived_path.write_text(json.dumps(archived, indent=1) + "\n")
    for r in ours:
        src, dst = suite / r["test_ranks"], to_dir / r["test_ranks"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.exists():
            shutil.move(src, dst)
    path.write_text(json.dumps([r for r in records if r not in ours], indent=1) + "\n")

    journal = suite / "studies" / f"{dataset}.log"
    deleted = []
    if journal.exists():
        (to_dir / "studies").mkdir(parents=True, exist_ok=True)
        shutil.copy2(journal, to_dir / "studies" / journal.name)
        storage = JournalStorage(JournalFileBackend(str(journal)))
        for name in _studies_of(storage, model):
            optuna.delete_study(study_name=name, storage=storage)
            deleted.append(name)
    return len(ours), deleted


def merge(staging: Path, dataset: str, model: str, live: Path) -> tuple[int, list[str]]:
    """Bring ``model``'s runs on ``dataset`` from the store ``staging`` into ``live``: (records, studies)."""
    live_path, staged_path = live / f"{dataset}.json", staging / f"{dataset}.json"
    records, every_staged = _records(live_path), _records(staged_path)
    staged = _runs_of(every_staged, model)
    clash = {(r["model"], r["seed"]) for r in staged} & {(r["model"], r["seed"]) for r in records}
    if clash:
        raise SystemExit(f"{live_path} already holds {sorted(clash)}: archive them first")
    journal, staged_journal = live / "studies" / f"{dataset}.log", staging / "studies" / f"{dataset}.log"
    storage = JournalStorage(JournalFileBackend(str(journal)))
    staged_storage = JournalStorage(JournalFileBackend(str(staged_journal)))
    names = _studies_of(staged_storage, model)
    held = set(_studies_of(storage, model)) & set(names)
    if held:
        raise SystemExit(f"{journal} already holds the studies {sorted(held)}: archive them first")
    for name in names:
        optuna.copy_study(from_study_name=name, from_storage=staged_storage, to_storage=storage)
    for r in staged:
        src, dst = staging / r["test_ranks"], live / r["test_ranks"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.exists():
            shutil.move(src, dst)
    live_path.write_text(json.dumps(records + staged, indent=1) + "\n")
    if staged_path.exists():
        staged_path.write_text(json.dumps([r for r in every_staged if r not in staged], indent=1) + "\n")
    return len(staged), names


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("model")
    p.add_argument("to_dir", type=Path)
    p.add_argument("--suite", type=Path, default=Path("benchmarks/results/suite"))
    p.add_argument("--merge", action="store_true", help="bring the runs from --suite (a staging store) into TO_DIR "
                   "(the live store), adding their studies to its journal")
    a = p.parse_args()
    if a.merge:
        n, studies = merge(a.suite, a.dataset, a.model, a.to_dir)
        print(f"{n} record(s) of {a.model} on {a.dataset} moved into {a.to_dir}; studies copied: {studies or 'none'}")
        raise SystemExit(0)
    n, studies = archive(a.suite, a.dataset, a.model, a.to_dir)
    print(f"{n} record(s) of {a.model} on {a.dataset} moved to {a.to_dir}; studies deleted: {studies or 'none'}")
