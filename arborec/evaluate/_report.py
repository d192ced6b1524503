"""Result records (JSON with provenance) and metric tables (terminal and Markdown)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import arborec


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    try:
        root = Path(arborec.__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "arborec"], cwd=root, capture_output=True,
                               text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    return arborec.__version__ + (f"+g{sha}" if sha else "") + (".dirty" if dirty else "")


def machine() -> dict:
    """What ran this: CPU model, kind (amx, avx512-bf16, avx2...) and count, platform, Python and torch versions."""
    from arborec.text._encoder import machine_kind

    info = {"platform": platform.platform(), "processor": platform.machine(), "cpu": _cpu_model(),
            "cpu_kind": machine_kind(), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def machine_line() -> str:
    """One line naming this machine for a benchmark's report: cores, CPU model and kind, current load."""
    m = machine()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{m['cpus']}-core {m['cpu']} ({m['cpu_kind']}), load average {load} (1/5/15 min)"


def _cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; the platform's processor string elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def result_record(*, dataset: str, stats: dict, split_hash: str, model: str, params: dict, seed: int,
                  valid: dict, test: dict, fit_seconds: float, eval_seconds: float, command: str | None = None,
                  extra: dict | None = None) -> dict:
    """One model's result on one dataset, with everything needed to trust and reproduce it."""
    record = {
        "dataset": dataset, "dataset_stats": stats, "split_hash": split_hash, "model": model, "params": params,
        "seed": seed, "valid": valid, "test": test,
        "fit_seconds": round(fit_seconds, 3), "eval_seconds": round(eval_seconds, 3),
        "peak_memory_mb": round(peak_memory_mb(), 1), "code_version": code_version(), "machine": machine(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
    }
    if extra:
        record.update(extra)
    return record


def save_ranks(ranks, path: str | Path) -> Path:
    """Save each test user's 0-based target rank (an :class:`Evaluation`'s ``ranks``, the split's user order) as a
    ``.npy`` file, capped at 65535 and stored as uint16 (a rank that far only says "not in any top-k"): the one
    format of the suite's rank files and ``arborec evaluate --ranks``, read back by
    :func:`arborec.evaluate.per_user_ndcg` for paired per-user comparisons."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.minimum(ranks, np.iinfo(np.uint16).max).astype(np.uint16))
    return path


def write_json(obj, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    if hasattr(x, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(x)
    return str(x)


TABLE_COLUMNS = ("recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20", "coverage@10")


def metric_table(records: list[dict], columns=TABLE_COLUMNS, markdown: bool = False) -> str:
    """Test metrics of several records side by side, one row per (dataset, model)."""
    head = ["dataset", "model", *columns, "cold R@10", "fit s"]
    rows = []
    for r in records:
        cold = next((s["metrics"].get("recall@10") for k, s in r["test"]["slices"].items() if k.startswith("cold")),
                    float("nan"))
        rows.append([r["dataset"], r["model"], *(f"{r['test']['metrics'][c]:.4f}" for c in columns),
                     f"{cold:.4f}", f"{r['fit_seconds']:.1f}"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])
