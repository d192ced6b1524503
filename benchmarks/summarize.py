"""Collect every result JSON under benchmarks/results/ into one Markdown table per dataset (results/README.md)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ["recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20", "coverage@10"]


def load_records(folder: Path) -> list[dict]:
    records = []
    for path in sorted(folder.glob("*.json")):
        obj = json.loads(path.read_text())
        for r in obj if isinstance(obj, list) else [obj]:
            if isinstance(r, dict) and "metrics" in (r.get("valid") or {}):
                r["_file"] = path.name
                records.append(r)
    return records


def _cold(r: dict) -> str:
    for name, s in r["valid"].get("slices", {}).items():
        if name.startswith("cold") and s.get("metrics"):
            return f"{s['metrics'].get('recall@10', float('nan')):.4f}"
    return "–"


def render(records: list[dict]) -> str:
    by_data = defaultdict(list)
    for r in records:
        by_data[r["dataset"]].append(r)
    lines = ["# Benchmark results", "",
             "**The comparison of models is the benchmark suite: [suite.md](suite.md)** (every model tuned alike "
             "on validation, several seeds, 95% intervals, paired per-user tests, test read once per final run).",
             "",
             "The tables below index the earlier single runs kept in this folder (searches, ablations, one-off "
             "baselines). They show **validation** metrics only, sorted by validation NDCG@10: several of these "
             "runs were configurations tried during development, so their test figures (in the JSON files) are "
             "not a comparison. `epoch s` is the median seconds per training epoch. Each row's JSON file holds "
             "the machine, the command, the date, the split hash and the configuration.", ""]
    for dataset, rows in by_data.items():
        rows.sort(key=lambda r: -r["valid"]["metrics"].get("ndcg@10", 0.0))
        splits = sorted({r.get("split_hash", "?") for r in rows})
        lines += [f"## {dataset} (validation)", "", f"split hash: {', '.join(splits)}", "",
                  "| model | " + " | ".join(COLUMNS) + " | cold R@10 | fit s | epoch s | peak MB | file |",
                  "|---|" + "---|" * (len(COLUMNS) + 5)]
        for r in rows:
            m = r["valid"]["metrics"]
            epoch = r.get("epoch_seconds")
            lines.append("| " + " | ".join([
                _label(r), *(f"{m.get(c, float('nan')):.4f}" for c in COLUMNS), _cold(r),
                f"{r.get('fit_seconds', 0):.1f}", f"{epoch:.2f}" if isinstance(epoch, (int, float)) else "–",
                f"{r.get('peak_memory_mb', 0):.0f}", f"[{r['_file']}]({r['_file']})"]) + " |")
        lines.append("")
    commands = sorted({r.get("command", "") for r in records if r.get("command")})
    lines += ["## Commands", ""] + [f"- `{c}`" for c in commands] + [""]
    return "\n".join(lines)


def main(folder: Path | str = RESULTS) -> Path:
    folder = Path(folder)
    out = folder / "README.md"
    extra = folder / "NOTES.md"
    text = render(load_records(folder))
    others = sorted(p.name for p in folder.glob("*.md") if p.name not in ("README.md", "NOTES.md"))
    if others:  # the other benchmarks (encoding, tree, segments, model, service, scale) write their own summaries
        text += "\n## Other benchmarks\n\n" + "\n".join(f"- [{n}]({n})" for n in others) + "\n"
    if extra.exists():
        text += "\n" + extra.read_text()
    out.write_text(text)
    return out



def _label(record: dict) -> str:
    """The model's name, with the variant (ablation or configuration tried) when it is not the model itself."""
    variant = record.get("variant")
    return record["model"] if not variant or variant == record["model"] else f"{record['model']} [{variant}]"

if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else RESULTS))
