"""The suite's Markdown report: per dataset, every model's mean and 95% interval over seeds, the published
anchors, and arborec against the best other model, paired per user."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from arborec.evaluate._stats import paired_comparison, paired_ratio, per_user_ndcg, seed_interval
from arborec.suite._config import ABLATIONS, ANCHOR_TOLERANCE, DATASETS, ID_ONLY, MODELS, OURS, TEXT_AWARE
from arborec.suite._plot import plot_dataset
from arborec.suite._run import RecordStore, distinct_settings

COLD = "cold_items"
COLD_MIN_USERS = 100  # the cold-item ratio is reported when at least this many test users have a cold target
#: the rivals arborec is compared with, paired per user (the keys of ``summarize(...)["comparisons"]``)
BEST_OTHER, BEST_ID_ONLY, BEST_TEXT_AWARE = ("best other model (by validation)", "best ID-only model (by validation)",
                                             "best text-aware model (by validation)")


def summarize(store: RecordStore) -> dict:
    """Per model: seeds, mean and interval of test NDCG@10, Recall@10 and cold Recall@10, mean valid NDCG@10,
    machine seconds; and the paired comparisons of arborec (only when arborec has records) with the other
    models whose validation NDCG@10 on the tuning seed is best (every model is tuned to that figure)."""
    models = {}
    for name in sorted({r["model"] for r in store.records}, key=lambda m: (MODELS + (m,)).index(m)):
        runs = store.of(name)

        def stat(get):
            return seed_interval([get(r) for r in runs])

        cold = [_cold(r) for r in runs]
        models[name] = {
            "seeds": [r["seed"] for r in runs],
            "ndcg@10": stat(lambda r: r["test"]["metrics"]["ndcg@10"]),
            "recall@10": stat(lambda r: r["test"]["metrics"]["recall@10"]),
            "cold_recall@10": seed_interval([c[1] for c in cold]), "cold_users": cold[0][0],
            "valid_ndcg@10": float(np.mean([r["valid"]["metrics"]["ndcg@10"] for r in runs])),
            # the figure every model was tuned to, on the same (tuning) seed: what "the best other model" reads
            "tuned_valid_ndcg@10": float(next((r for r in runs if r["seed"] == r["tuning"]["seed"]), runs[0])
                                         ["valid"]["metrics"]["ndcg@10"]),
            "machine_seconds": _machine_seconds(runs),
            "chosen": runs[0]["tuning"]["chosen"] if "tuning" in runs[0] else {},
            # distinct settings its tuning tried (finished or pruned; the tuning seed's record holds them)
            "trials": max((distinct_settings(r) for r in runs if "tuning" in r), default=0),
        }
    out = {"models": models, "comparisons": {}}
    if OURS in models:
        others = {m: s for m, s in models.items() if m != OURS and m not in ABLATIONS}
        by_valid = sorted(others, key=lambda m: -others[m]["tuned_valid_ndcg@10"])
        targets = {BEST_OTHER: by_valid[:1], BEST_ID_ONLY: [m for m in by_valid if m in ID_ONLY][:1]}
        if _has_text(store.records[0]["dataset"]):  # without item text a text-aware peer is an ID model renamed
            targets[BEST_TEXT_AWARE] = [m for m in by_valid if m in TEXT_AWARE][:1]
        per_user = {m: _seed_mean_ndcg(store, m) for m in models}  # each model's ranks read once
        ours = per_user[OURS]
        for label, names in targets.items():
            if names:
                cmp = paired_comparison(ours, per_user[names[0]])
                out["comparisons"][label] = {"model": names[0], **cmp.to_dict(), "verdict": cmp.verdict,
                                             "seeds": min(len(models[OURS]["seeds"]), len(others[names[0]]["seeds"]))}
        out["against_each"] = {}  # every other model too, so no single choice of rival decides the verdict
        for name in by_valid:
            cmp = paired_comparison(ours, per_user[name])
            out["against_each"][name] = {**cmp.to_dict(), "verdict": cmp.verdict, "seeds": len(others[name]["seeds"])}
        cold = store.cold_users()
        # the cold-item goal is stated against SASRec; a ratio over a handful of users says nothing
        if cold is not None and "sasrec" in models and cold.sum() >= COLD_MIN_USERS:
            hits = {m: np.mean([store.ranks(r)[cold] < 10 for r in store.of(m)], axis=0) for m in (OURS, "sasrec")}
            if hits["sasrec"].sum():
                ratio, low, high = paired_ratio(hits[OURS], hits["sasrec"])
                out["cold_ratio"] = {"rival": "sasrec", "n_users": int(cold.sum()), "ratio": ratio, "low": low,
                                     "high": high}
        out["ablations"] = {}  # the whole model minus the model without a part: what that part is worth
        for name in (m for m in ABLATIONS if m in models):
            cmp = paired_comparison(ours, per_user[name])
            out["ablations"][name] = {**cmp.to_dict(), "verdict": cmp.verdict, "seeds": len(models[name]["seeds"])}
    return out


def glance_section(stores: dict[str, RecordStore], summaries: dict[str, dict]) -> list[str]:
    """The report's first section: one row per dataset, arborec against the best ID-only and the best text-aware
    model (by validation), paired per user, with the published figures beside them; nothing before arborec runs."""
    rows = []
    for name, summary in summaries.items():
        models = summary["models"]
        if OURS not in models:
            continue
        cells = []
        for label in (BEST_ID_ONLY, BEST_TEXT_AWARE):
            c = summary["comparisons"].get(label)
            if c is None:
                cells.append("no item text" if label == BEST_TEXT_AWARE and not _has_text(name) else "none run yet")
                continue
            rival = models[c["model"]]
            cells.append(f"{c['model']} {_ci(rival['ndcg@10'])}{_seeds_note(rival['seeds'])}: {c['relative']:+.1%}, "
                         f"CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], p = {c['p_value']:.2g}: **{c['verdict']}**")
        r = summary.get("cold_ratio")
        cold = f"{r['ratio']:.2f}x [{r['low']:.2f}x, {r['high']:.2f}x]" if r else "-"
        published = "; ".join(f"{a.label} {a.ndcg10:.4f}" for a in _anchors(name)) or "-"
        missing = [m for m in MODELS if m not in models and m not in stores[name].skipped]
        ours, n = models[OURS], len(models[OURS]["seeds"])
        rows.append(f"| {name} | {_ci(ours['ndcg@10'])} ({_release(stores[name].of(OURS))}, {n} seed{'s' * (n > 1)}) "
                    f"| {cells[0]} | {cells[1]} | {cold} | {published} | {', '.join(missing) or '-'} |")
    if not rows:
        return []
    return ["## At a glance", "",
            "arborec's test NDCG@10 (mean ± 95% interval over seeds) against the best ID-only and the best "
            "text-aware model of each dataset (chosen by validation NDCG@10 on the tuning seed, never by test), "
            "paired per user over every test user, verdicts at p < 0.05; its cold-item Recall@10 over SASRec's "
            "(paired bootstrap interval). Each dataset's section below has every model, the ablations and the "
            "details.", "",
            "| dataset | arborec | vs the best ID-only model | vs the best text-aware model | cold Recall@10 / SASRec "
            "| published | not run yet |", "|---|---|---|---|---|---|---|", *rows, ""]


def _has_text(dataset: str) -> bool:
    """Whether the dataset's items have text (a dataset outside the suite is taken to have it)."""
    spec = DATASETS.get(dataset)
    return spec is None or spec.has_text


def _seeds_note(seeds: list) -> str:
    """"" for 3 seeds or more (the suite's verdicts), " (one seed)" or " (2 seeds)" below that."""
    n = len(seeds)
    return "" if n >= 3 else " (one seed)" if n == 1 else f" ({n} seeds)"


def _cold(record: dict) -> tuple[int, float]:
    s = next(v for k, v in record["test"]["slices"].items() if k.startswith(COLD))
    return s["n_users"], s["metrics"]["recall@10"]


def _seed_mean_ndcg(store: RecordStore, model: str) -> np.ndarray:
    """(n_test_users,) each user's test NDCG@10, averaged over the model's seeds."""
    return np.mean([per_user_ndcg(store.ranks(r)) for r in store.of(model)], axis=0)


def _anchors(dataset: str) -> tuple:
    """The published figures the suite sets beside ``dataset``'s table (none for a dataset outside the suite)."""
    spec = DATASETS.get(dataset)
    return spec.anchors if spec else ()


def _anchor_checks(anchors, models: dict) -> list[str]:
    """One line per published figure that one of our models implements: does its seed mean come within
    :data:`ANCHOR_TOLERANCE` of it (issue 14's rule: our baselines reproduce the published figures)?"""
    lines = []
    for a in anchors:
        floor = (1 - ANCHOR_TOLERANCE) * a.ndcg10
        ran = [m for m in a.ours if m in models]
        if ran:
            verdicts = ", ".join(_anchor_verdict(m, models[m], floor) for m in ran)
            lines.append(f"- Anchor check, published {a.label} NDCG@10 {a.ndcg10:.4f} (reproduced at >= "
                         f"{floor:.4f}, within {ANCHOR_TOLERANCE:.0%}): {verdicts}.")
    return lines


def _anchor_verdict(model: str, stats: dict, floor: float) -> str:
    """"sasrec 0.0479 ± 0.0037 (below)": the model's seed mean against the anchor's reproduction floor."""
    word = "reproduced" if stats["ndcg@10"][0] >= floor else "below"
    return f"{model} {_ci(stats['ndcg@10'])} ({word}{'' if len(stats['seeds']) > 1 else ', one seed so far'})"


def _cut(text: str, width: int = 240) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _ci(stat: tuple[float, float]) -> str:
    mean, half = stat
    return f"{mean:.4f}" if np.isnan(half) else f"{mean:.4f} ± {half:.4f}"


def dataset_section(store: RecordStore, summary: dict | None = None, figure_link: str = "") -> list[str]:
    """The report's section of one dataset (``summary``: ``summarize(store)``, computed when not given); with
    ``figure_link``, a link to the dataset's figure."""
    name = store.records[0]["dataset"]
    spec = DATASETS.get(name)
    summary = summarize(store) if summary is None else summary
    first = store.records[0]
    stats = first.get("dataset_stats", {})
    lines = [f"## {name}", "",
             f"Split `{first['split_hash']}`; epoch cap {first['suite']['epoch_cap']} for every model "
             f"(validation every {first['suite']['eval_every']} epochs); tuning budget "
             f"{spec.budget if spec else first['suite']['budget']} "
             f"trials per model on seed {first['tuning']['seed']}, validation NDCG@10 only. "
             f"{_counts(stats)} Machines: {_machines(store.records)}; machine time of every run and tuning trial "
             f"here: {_machine_seconds(store.records) / 3600:.1f} h.", "",
             "| model | seeds | NDCG@10 | Recall@10 | cold Recall@10 | valid NDCG@10 (tuning seed) | settings tried "
             "| machine min | chosen setting |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model, s in summary["models"].items():
        if model in ABLATIONS:  # in their own table below
            continue
        mark = f"**{model}** {_release(store.of(model))}" if model == OURS else model
        seeds = f"{len(s['seeds'])}" + ("" if len(s["seeds"]) > 1 else " (one seed)")
        lines.append(f"| {mark} | {seeds} | {_ci(s['ndcg@10'])} | {_ci(s['recall@10'])} | "
                     f"{_ci(s['cold_recall@10'])} | {s['tuned_valid_ndcg@10']:.4f} | {s['trials']} | "
                     f"{s['machine_seconds'] / 60:.1f} | "
                     f"{_setting(s['chosen'])} |")
    for a in _anchors(name):
        lines.append(f"| *published: {a.label}* | | {a.ndcg10:.4f} | {a.recall10:.4f} | | | | | {a.source} |")
    for model, reason in store.skipped.items():
        lines.append(f"| {model} | – | not applicable | | | | | | {_cut(reason)} |")
    missing = [m for m in MODELS if m not in summary["models"] and m not in store.skipped]
    cold_users = next(iter(summary["models"].values()))["cold_users"]
    lines += ["", f"Cold = test targets with <= 5 training events ({cold_users} users). "
              "± is the half-width of a 95% Student-t interval over seeds."]
    if missing:
        lines.append(f"Not run yet on this dataset: {', '.join(missing)}.")
    lines += _anchor_checks(_anchors(name), summary["models"])
    for label, c in summary["comparisons"].items():
        hedge = ("" if c["seeds"] >= 3 else f" (one of the two has {c['seeds']} seed{'s' if c['seeds'] > 1 else ''} "
                 "so far: a direction, not yet the 3-seed verdict)")
        lines.append(f"- arborec vs the {label}, **{c['model']}**, paired over {c['n_users']} test users "
                     f"(per-user NDCG@10, each model's seed mean): difference {c['diff']:+.4f} "
                     f"({c['relative']:+.1%}), 95% CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], "
                     f"p = {c['p_value']:.3g}: **{c['verdict']}**{hedge}.")
    if "cold_ratio" in summary:
        c = summary["cold_ratio"]
        lines.append(f"- Cold-item Recall@10, arborec / {c['rival']}: **{c['ratio']:.2f}x**, 95% CI "
                     f"[{c['low']:.2f}x, {c['high']:.2f}x] (paired bootstrap over the {c['n_users']} cold test users, "
                     "each model's seed mean).")
    if summary.get("against_each"):
        lines += ["", "arborec against every other model, paired per user (seed means; rivals in order of "
                  "validation NDCG@10 on the tuning seed):", "",
                  "| rival | rival's seeds | difference in NDCG@10 | 95% CI | p | verdict |", "|---|---|---|---|---|---|"]
        for rival, c in summary["against_each"].items():
            lines.append(f"| {rival} | {c['seeds']} | {c['diff']:+.4f} ({c['relative']:+.1%}) | "
                         f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['p_value']:.3g} | {c['verdict']} |")
    if summary.get("ablations"):
        lines += ["", "What each part of arborec is worth: arborec's chosen setting with the part switched off (or, "
                  "for a name without `-no-`, done another way), paired per user against the whole model (a **win** "
                  "means the part helps, or the way the whole model does it beats the variant; a **loss**, the "
                  "reverse):", "",
                  "| without (or variant) | seeds | NDCG@10 | cold Recall@10 | whole model minus it | 95% CI | p | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for ablation, c in summary["ablations"].items():
            s = summary["models"][ablation]
            lines.append(f"| {ablation.removeprefix(OURS + '-no-')} "
                         f"({', '.join(f'{k}={v}' for k, v in ABLATIONS[ablation].items())})"
                         f" | {c['seeds']} | {_ci(s['ndcg@10'])} | {_ci(s['cold_recall@10'])} | {c['diff']:+.4f} "
                         f"({c['relative']:+.1%}) | [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['p_value']:.3g} | "
                         f"{c['verdict']} |")
    if figure_link:
        lines += ["", f"![{name}: every model's test NDCG@10 and arborec's paired differences]({figure_link})"]
    own = [r for r in store.of(OURS) if "chosen_in_fit" in r]
    if own:
        lines += ["", "What arborec chose by itself on validation (its `auto` settings), per seed: "
                  + "; ".join(f"seed {r['seed']}: {_own_choice(r['chosen_in_fit'])}" for r in own) + "."]
    return lines + [""]


def _release(records: list[dict]) -> str:
    """The release(s) of arborec the records were run with ("0.2.0"; "0.2.0/0.3.0" when mixed)."""
    return "/".join(sorted({str(r.get("code_version", "?")).split("+")[0] for r in records}))


def _own_choice(c: dict) -> str:
    pointer = (f"pointer {c['pointer_weight']:g} at temperature {c['pointer_temperature']:g}" if c.get("pointer_weight")
               else "no pointer")
    regime = {"prefix": "one prefix per target, ", "every": "every position, "}.get(c.get("regime"), "")
    tree = ("skipped" if not c.get("has_tree") else "built, in the item table" if c.get("tree_in_items")
            else "built")
    return (f"window {c.get('max_len')}, {regime}text {'on' if c.get('has_text') else 'off'}, "
            f"interest tree {tree}, text weight {c.get('text_weight', 0):g}, {pointer}")


def _machines(records: list[dict]) -> str:
    """The machines the runs came from, with how many runs each (records before CPU models were kept: unnamed)."""
    seen: dict[str, int] = {}
    for r in records:
        m = r.get("machine", {})
        name = f"{m.get('cpus', '?')}-core {m.get('cpu', 'CPU (model not recorded)')}" + (
            f" ({m['cpu_kind']})" if "cpu_kind" in m else "") + (f", {m['device']}" if m.get("device") else "")
        seen[name] = seen.get(name, 0) + 1
    return "; ".join(f"{name}: {n} run{'s' if n > 1 else ''}" for name, n in seen.items())


def _machine_seconds(records: list[dict]) -> float:
    """Machine time of ``records``: each run's, with its tuning trials."""
    return float(sum(r.get("machine_seconds", r["fit_seconds"]) for r in records))


def _counts(stats: dict) -> str:
    after = stats.get("after", stats)
    keys = [k for k in ("n_users", "n_items", "n_interactions") if k in after]
    return ", ".join(f"{after[k]:,} {k.removeprefix('n_')}" for k in keys) + ("." if keys else "")


def _setting(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "-"


def report_path(out_dir: str | Path) -> Path:
    """The report of the records in ``out_dir``: beside it, named after it (``suite/`` -> ``suite.md``), so that a
    store of its own (a new version run beside the live one) never overwrites the live report."""
    out_dir = Path(out_dir)
    return out_dir.parent / f"{out_dir.name}.md"


def write_report(out_dir: str | Path) -> Path:
    """Write :func:`report_path` from every ``<out_dir>/<dataset>.json`` (in the suite's dataset order)."""
    out_dir = Path(out_dir)
    names = [p.stem for p in out_dir.glob("*.json") if not p.name.endswith(".skipped.json")]
    order = list(DATASETS)
    names.sort(key=lambda n: order.index(n) if n in order else len(order))
    lines = ["# The benchmark suite", "",
             "Full ranking over the catalogue, chronological leave-one-out, history items excluded. Every model "
             "gets the same validation-only tuning budget over its declared space (`arborec/suite/_config.py`) "
             "and the same epoch cap and early stopping; test is read once per (model, seed). Reproduce with "
             "`arborec suite --data-dir ../shared/data` (resumable). Records, with machine, command, code version "
             "and date: `benchmarks/results/suite/<dataset>.json`. arborec's figures before 0.2, when the interest "
             "tree was in its ranking path, and the ablation that took it out: "
             "`benchmarks/results/tree_in_ranking.md`.", ""]
    stores = {name: RecordStore(out_dir, name) for name in names}
    stores = {name: store for name, store in stores.items() if store.records}
    summaries = {name: summarize(store) for name, store in stores.items()}  # once: glance, sections, figures
    sections, seconds = glance_section(stores, summaries), 0.0
    for name, store in stores.items():
        plot_dataset(summaries[name], out_dir / "plots" / f"{name}.png", f"{name}: test NDCG@10",
                     anchors=_anchors(name), ours=OURS)
        sections += dataset_section(store, summaries[name], f"{out_dir.name}/plots/{name}.png")
        seconds += _machine_seconds(store.records)
    lines += [f"Machine time of the whole suite so far (every run and tuning trial, all datasets): "
              f"{seconds / 3600:.1f} h.", ""] + sections
    path = report_path(out_dir)
    path.write_text("\n".join(lines) + "\n")
    return path


README_START, README_END = "<!-- suite results: start (arborec suite --readme) -->", "<!-- suite results: end -->"


def update_readme(readme: str | Path, out_dir: str | Path) -> None:
    """Put every dataset's section of the report between the README's two marker lines (headings one level down)."""
    readme = Path(readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} lacks the marker lines {README_START!r} and {README_END!r}")
    report = report_path(out_dir).read_text()
    sections = report[report.index("\n## "):].strip() if "\n## " in report else "(no dataset has run yet)"
    sections = sections.replace("\n## ", "\n### ").removeprefix("## ")
    # the figures' links are relative to the report; make them relative to the README
    base = Path(os.path.relpath(Path(out_dir).parent, readme.parent)).as_posix()
    if base != ".":
        sections = sections.replace(f"]({Path(out_dir).name}/plots/", f"]({base}/{Path(out_dir).name}/plots/")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(f"{head}{README_START}\n\n### {sections}\n\n{README_END}{tail}")
