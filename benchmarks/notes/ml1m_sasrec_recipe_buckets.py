"""Where SASRec on its anchor's recipe beats arborec on ML-1M: per-user test NDCG@10 by quartile of the user's
training history length and of the target's training events (a description of test records already read;
nothing is chosen from it).

    ARBOREC_DATA_DIR=../shared/data python benchmarks/notes/ml1m_sasrec_recipe_buckets.py

Reads the suite's rank files (arborec and SASRec, 3 seeds each, seed means),
benchmarks/results/sasrec_anchor_recipe_ml-1m_ranks.npy and, once it exists, arborec's run on the same recipe
(benchmarks/results/arborec_anchor_recipe_ml-1m_ranks.npy). Write-up: benchmarks/notes/ml1m_sasrec_recipe.md.
"""
from pathlib import Path

import numpy as np

from arborec.data import leave_one_out, load_prepared
from arborec.evaluate import per_user_ndcg

RANKS = "benchmarks/results/suite/ranks/ml-1m/"
ARBOREC_RECIPE = "benchmarks/results/arborec_anchor_recipe_ml-1m_ranks.npy"  # arborec on the same recipe


def seed_mean(model: str) -> np.ndarray:
    return np.mean([per_user_ndcg(np.load(f"{RANKS}{model}-seed{s}.npy")) for s in range(3)], axis=0)


def by_quartile(name: str, key: np.ndarray, models: dict[str, np.ndarray]) -> None:
    edges = np.quantile(key, [0, 0.25, 0.5, 0.75, 1])
    print(f"\n{name} (quartile edges {', '.join(f'{e:.0f}' for e in edges)})")
    pair = "arborec recipe" if "arborec recipe" in models else "arborec"  # arborec on the recipe, when it ran
    print("| quartile | users | " + " | ".join(models) + f" | {pair} - sasrec recipe |")
    print("|---" * (len(models) + 3) + "|")
    bucket = np.digitize(key, edges[1:-1])
    for q in range(4):
        m = bucket == q
        cells = " | ".join(f"{v[m].mean():.4f}" for v in models.values())
        print(f"| q{q + 1} | {m.sum()} | {cells} | {models[pair][m].mean() - models['sasrec recipe'][m].mean():+.4f} |")


if __name__ == "__main__":
    split = leave_one_out(load_prepared("ml-1m"))
    users = split.eval_users("test")
    models = {"arborec": seed_mean("arborec"),
              "sasrec recipe": per_user_ndcg(np.load("benchmarks/results/sasrec_anchor_recipe_ml-1m_ranks.npy")),
              "suite sasrec": seed_mean("sasrec")}
    if Path(ARBOREC_RECIPE).exists():
        models["arborec recipe"] = per_user_ndcg(np.load(ARBOREC_RECIPE))
    by_quartile("user's training history length", split.train_lengths()[users], models)
    by_quartile("target's training events", split.item_train_counts()[split.targets("test", users)], models)
