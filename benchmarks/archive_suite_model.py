"""Set a model's suite runs on one dataset aside, so that a new version of it is tuned and run afresh.

    python benchmarks/archive_suite_model.py DATASET MODEL TO_DIR [--suite benchmarks/results/suite]

Moves the model's records (``<dataset>.json``) and test ranks to ``TO_DIR`` (e.g.
``benchmarks/results/suite-0.2``), copies the dataset's tuning journal there, and deletes the model's
studies from the live journal, so the next ``arborec suite`` run spends the model's whole tuning budget
again. Nothing is lost: the archive keeps every record, rank file and trial. arborec's ablations
(``arborec-no-text``...) go with it.
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


def archive(suite: Path, dataset: str, model: str, to_dir: Path) -> tuple[int, list[str]]:
    """(records moved, studies deleted)."""
    path = suite / f"{dataset}.json"
    records = json.loads(path.read_text()) if path.exists() else []
    ours = [r for r in records if r["model"] == model or (model == OURS and r["model"] in ABLATIONS)]
    archived_path = to_dir / f"{dataset}.json"
    archived = json.loads(archived_path.read_text()) if archived_path.exists() else []
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
        for s in optuna.get_all_study_summaries(storage):
            if s.study_name == model or s.study_name.startswith(f"{model}@"):
                optuna.delete_study(study_name=s.study_name, storage=storage)
                deleted.append(s.study_name)
    return len(ours), deleted


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("model")
    p.add_argument("to_dir", type=Path)
    p.add_argument("--suite", type=Path, default=Path("benchmarks/results/suite"))
    a = p.parse_args()
    n, studies = archive(a.suite, a.dataset, a.model, a.to_dir)
    print(f"{n} record(s) of {a.model} on {a.dataset} moved to {a.to_dir}; studies deleted: {studies or 'none'}")
