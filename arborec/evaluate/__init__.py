"""Stage `evaluate`: one protocol (full-ranking leave-one-out) for every model, and its reports."""

from arborec.evaluate._metrics import rank_metrics, target_ranks, top_k
from arborec.evaluate._protocol import COLD_SLICE, KS, Evaluation, evaluate, slice_masks, users_per_chunk
from arborec.evaluate._tuning import grid, run_model, select_within_one_se, tune
from arborec.evaluate._stats import PairedComparison, paired_comparison, paired_ratio, per_user_ndcg, seed_interval
from arborec.evaluate._report import code_version, machine, machine_line, metric_table, peak_memory_mb, result_record, save_ranks, write_json

__all__ = ["evaluate", "slice_masks", "COLD_SLICE", "tune", "grid", "run_model", "Evaluation", "KS", "rank_metrics", "target_ranks", "top_k", "metric_table", "users_per_chunk",
           "result_record", "save_ranks", "write_json", "select_within_one_se", "code_version", "machine", "machine_line", "peak_memory_mb",
           "paired_comparison", "paired_ratio", "PairedComparison", "per_user_ndcg", "seed_interval"]
