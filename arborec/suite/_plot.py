"""The suite report's figure of one dataset: every model's test NDCG@10 with its interval, and arborec's paired
difference with each rival."""

from __future__ import annotations

import math
from pathlib import Path

VERDICT_COLOURS = {"win": "tab:green", "tie": "tab:gray", "loss": "tab:red"}


def plot_dataset(summary: dict, path: str | Path, title: str, anchors=(), ours: str = "arborec") -> Path:
    """Write a PNG of two panels.

    Left: each model's test NDCG@10, mean over its seeds with the 95% interval (none drawn for one seed), arborec in
    colour, published anchors as dashed lines. Right (when arborec has records): arborec minus each rival and minus
    each ablation, paired per user, with the bootstrap interval, coloured by verdict; right of zero favours arborec.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = summary["models"]
    rivals = {**summary.get("against_each", {}), **{f"without {k.split('-no-')[-1]}" if "-no-" in k else k: v
                                                    for k, v in summary.get("ablations", {}).items()}}
    names = [m for m in models if m not in summary.get("ablations", {})][::-1]  # top to bottom in report order
    fig, axes = plt.subplots(1, 2 if rivals else 1, figsize=(10 if rivals else 5.5, 0.45 * max(len(names),
                                                                                                  len(rivals)) + 1.6),
                             squeeze=False)
    ax = axes[0][0]
    means = [models[m]["ndcg@10"][0] for m in names]
    halves = [0.0 if math.isnan(models[m]["ndcg@10"][1]) else models[m]["ndcg@10"][1] for m in names]  # 1 seed
    colours = ["tab:orange" if m == ours else "tab:blue" for m in names]
    ax.barh(names, means, xerr=halves, color=colours, capsize=3)
    for m, mean, half in zip(names, means, halves):
        seeds = len(models[m]["seeds"])
        ax.annotate(f" {mean:.4f}" + (" (1 seed)" if seeds == 1 else ""), (mean + half, m), va="center", fontsize=7)
    for i, a in enumerate(anchors):
        ax.axvline(a.ndcg10, linestyle="--", color=f"C{i + 3}", linewidth=1, label=f"published: {a.label}")
    if anchors:
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("test NDCG@10 (mean over seeds, 95% interval)")
    ax.set_xlim(0, max([m + h for m, h in zip(means, halves)] + [a.ndcg10 for a in anchors]) * 1.35)
    if rivals:
        ax = axes[0][1]
        labels = list(rivals)[::-1]
        diffs = [rivals[k]["diff"] for k in labels]
        err = [[d - rivals[k]["ci_low"] for k, d in zip(labels, diffs)],
               [rivals[k]["ci_high"] - d for k, d in zip(labels, diffs)]]
        ax.errorbar(diffs, labels, xerr=err, fmt="none", ecolor="black", capsize=3, linewidth=1)
        ax.scatter(diffs, labels, c=[VERDICT_COLOURS[rivals[k]["verdict"]] for k in labels], zorder=3)
        ax.axvline(0, color="black", linewidth=0.8)
        n_ablations = len(summary.get("ablations", {}))
        if n_ablations and n_ablations < len(labels):  # ablations (bottom) apart from rival models (top)
            ax.axhline(n_ablations - 0.5, color="gray", linestyle=":", linewidth=0.8)
        ax.set_xlabel(f"{ours} minus rival, NDCG@10 (paired per user, 95% CI)")
        ax.set_title("green: win, grey: tie, red: loss (p < 0.05)", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
