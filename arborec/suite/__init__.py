"""The benchmark suite: every model on every suite dataset, tuned alike on validation, over seeds, with paired tests."""

from arborec.suite._config import DATASETS, MODELS, SPACES, TRIAL_BUDGET, Anchor, SuiteDataset
from arborec.suite._report import report_path, summarize, update_readme, write_report
from arborec.suite._run import RecordStore, StopRequested, SuitePlan, run_suite
from arborec.suite._tuning import TuningResult, tune_model

__all__ = ["run_suite", "SuitePlan", "StopRequested", "RecordStore", "tune_model", "TuningResult", "summarize",
           "write_report", "report_path", "update_readme", "DATASETS", "MODELS", "SPACES", "TRIAL_BUDGET", "Anchor", "SuiteDataset"]
