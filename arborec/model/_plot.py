"""The loss / validation-metric plot of one training run."""

from __future__ import annotations

from pathlib import Path


def plot_history(history: list[dict], path: str | Path, title: str = "") -> Path:
    """Write a PNG: training loss per epoch (left axis) and validation NDCG@10 where measured (right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [r["loss"] for r in history], color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="tab:blue")
    valid = [(r["epoch"], r["valid_ndcg@10"]) for r in history if r.get("valid_ndcg@10") is not None]
    if valid:
        ax2 = ax.twinx()
        ax2.plot(*zip(*valid), "o-", color="tab:orange", label="valid NDCG@10")
        ax2.set_ylabel("valid NDCG@10", color="tab:orange")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
