"""Interest-aware slates vs greedy top-k: offline NDCG@10 and coverage, then a drift simulator over seeds.

Usage (one torch thread; the bundle from `arborec fit`; `pip install -e ".[bench]"` for the mabwiser rows):

    OMP_NUM_THREADS=1 python benchmarks/bench_policy.py --bundle runs/ml-100k-arborec --data ml-100k \
        --data-dir /work/shared/data --seeds 0 1 2 --users 300

1. Offline (real leave-one-out): the slate policy without exploration and without feedback against
   greedy top-10 by the same scores. Its ``score_weight``, ``spread`` and ``head`` are chosen on VALIDATION:
   the most level-1 coverage among the settings whose valid NDCG@10 is within 3% of greedy's
   (else the best NDCG@10); the test split is read once, for greedy and the chosen setting.
2. Simulator (:class:`arborec.policy.SlateSimulator`): ``--users`` test users per seed, their taste the
   model's next-item distribution, a planted drift at ``--drift-at``. The exploration strength
   (``prior_strength``) is chosen on a separate validation seed (other users) by cumulative clicks.
   Policies: greedy top-k, the slate policy learning without exploration (posterior means), with
   Thompson sampling, k at random from the top 50, and the Thompson slate with a maintained library's
   learner (mabwiser) in place of its own (:class:`MabwiserSlatePolicy`).

Writes benchmarks/results/policy_<data>.json, .md and policy_<data>_reward.png, policy_<data>_drift.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from arborec.data import leave_one_out, load_prepared
from arborec.model import load_bundle
from arborec.policy import GreedyPolicy, RandomTopNPolicy, SlatePolicy, SlateSimulator, intra_list_diversity
from arborec.policy._simulator import INTEREST_MIN_SHARE

K = 10
SCORE_WEIGHTS = (0.5, 0.8, 1.0)
SPREADS = (0.5, 1.0, 2.0)
HEADS = (0, 3, 5, 7)  # slots of the best-scored items before the interests share the rest
PRIOR_STRENGTHS = (5.0, 20.0, 80.0)
NDCG_TOLERANCE = 0.97  # the slate's valid NDCG@10 must stay >= this x greedy's
VALIDATION_SEED = 100


def offline(model, split, stage: str, users: np.ndarray, policies: dict) -> dict:
    """NDCG@10, level-1 coverage and tree diversity of each policy's first slate, per user."""
    hist = split.histories(stage, users)
    targets = split.targets(stage, users)
    out = {name: {"ndcg": np.zeros(len(users)), "coverage": np.zeros(len(users)), "diversity": np.zeros(len(users))}
           for name in policies}
    codes = model.tree_.codes
    for start in range(0, len(users), 256):
        part = np.arange(start, min(start + 256, len(users)))
        sub = _rows(hist, part)
        scores = model.score(users[part], sub)
        long, short = model.level_distributions(sub)
        for b, row in enumerate(part):
            seen = sub.sequence(b)
            mine = np.flatnonzero(long[0][b] >= INTEREST_MIN_SHARE)
            for name, policy in policies.items():
                slate = policy.slate(int(users[row]), [p[b] for p in long], [p[b] for p in short], scores[b],
                                     exclude=seen)
                hit = np.flatnonzero(slate.items == targets[row])
                out[name]["ndcg"][row] = 1.0 / np.log2(hit[0] + 2.0) if len(hit) else 0.0
                out[name]["coverage"][row] = np.isin(mine, slate.nodes).mean() if len(mine) else np.nan
                out[name]["diversity"][row] = intra_list_diversity(codes[slate.items])
    return out


def _rows(hist, rows):
    from arborec.data import Histories

    seqs = [hist.sequence(int(r)) for r in rows]
    indptr = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in seqs], out=indptr[1:])
    return Histories(indptr, np.concatenate(seqs).astype(np.int32))


def mean_ci(x: np.ndarray) -> list[float]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
    return [float(x.mean()), float(x.mean() - half), float(x.mean() + half)]


def seeds_ci(x: list[float]) -> list[float]:
    """Mean over seeds with a t interval (3 seeds: t_0.975,2 = 4.30)."""
    from scipy.stats import t

    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return [float(x.mean()), float("nan"), float("nan")]
    half = t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return [float(x.mean()), float(x.mean() - half), float(x.mean() + half)]


class MabwiserSlatePolicy(SlatePolicy):
    """``slate_ts`` with each level-1 node's click rate drawn by a maintained library instead of arborec's own
    Beta posterior: one mabwiser ``ThompsonSampling`` bandit per user, its arms the level-1 nodes (the comparison
    issue 17 asks for: prefer the library where it measures as well). The allocation of the slots, the items
    inside each node and their order are the slate policy's own, so only the learner differs.

    mabwiser's Thompson sampling starts every arm at Beta(1, 1) and never forgets; arborec's starts each node at
    the model's interest in it (``prior_strength`` pseudo-slots) and multiplies old counts by ``memory`` per
    slate. With ``model_prior`` the model's prior is given to mabwiser as pseudo-observations (rounded) at the
    user's first slate, so the remaining difference is forgetting and the prior's refresh at every slate.
    One draw per slate: propensities are not estimated (simulator only).
    """

    def __init__(self, k: int = 10, model_prior: bool = False, **kw):
        super().__init__(k, explore=True, n_draws=1, **kw)
        self.model_prior = model_prior

    def fit(self, tree):
        super().fit(tree)
        self.mabs_ = {}
        self.version_ = "mabwiser-ts" + ("-prior" if self.model_prior else "")
        return self

    def _bandit(self, user, long, short, scores, exclude):
        from mabwiser.mab import MAB, LearningPolicy

        mab = self.mabs_.get(user)
        if mab is None:
            arms = list(range(self.n_nodes_))
            mab = MAB(arms, LearningPolicy.ThompsonSampling(), seed=int(self.rng_.integers(2**31)))
            decisions, rewards = [], []  # the library's own start: Beta(1, 1) on every arm
            if self.model_prior:
                alpha, beta = self.posterior(user, long, short, scores, exclude)  # no counts yet: the prior alone
                ones, zeros = np.rint(alpha).astype(int), np.rint(beta).astype(int)
                decisions = [j for j in arms for _ in range(ones[j] + zeros[j])]
                rewards = [r for j in arms for r in [1] * ones[j] + [0] * zeros[j]]
            mab.fit(decisions, rewards)
            self.mabs_[user] = mab
        return mab

    def _theta(self, user, long, short, scores, exclude, n_draws: int) -> np.ndarray:
        draw = self._bandit(user, long, short, scores, exclude).predict_expectations()
        return np.array([[draw[j] for j in range(self.n_nodes_)]])  # one draw: the served slate

    def update(self, user, nodes, rewards, slate_id=None) -> None:
        super().update(user, nodes, rewards, slate_id)  # the counts the head's size follows (head_slots)
        if len(nodes):
            self.mabs_[user].partial_fit(np.asarray(nodes).tolist(), (np.asarray(rewards) > 0).astype(int).tolist())


def simulate(model, split, users, args, seed: int, strength: float, spread: float, score_weight: float,
             head: int = 0, only=None) -> dict:
    hist = split.histories("test", users)
    sim = SlateSimulator(model, model.tree_, hist, k=K, n_steps=args.steps, drift_at=args.drift_at, seed=seed)
    tree = model.tree_
    make = {
        "greedy": lambda: GreedyPolicy(K).fit(tree),
        "slate_no_explore": lambda: SlatePolicy(K, explore=False, prior_strength=strength, spread=spread,
                                                score_weight=score_weight, head=head, seed=seed).fit(tree),
        "slate_ts": lambda: SlatePolicy(K, explore=True, prior_strength=strength, spread=spread,
                                        score_weight=score_weight, head=head, n_draws=args.draws,
                                        seed=seed).fit(tree),
        "random_top50": lambda: RandomTopNPolicy(K, 50, seed=seed).fit(tree),
        "mabwiser_ts": lambda: MabwiserSlatePolicy(K, prior_strength=strength, spread=spread,
                                                   score_weight=score_weight, head=head, seed=seed).fit(tree),
        "mabwiser_ts_prior": lambda: MabwiserSlatePolicy(K, model_prior=True, prior_strength=strength,
                                                         spread=spread, score_weight=score_weight, head=head,
                                                         seed=seed).fit(tree),
    }
    return {name: sim.run(f(), name) for name, f in make.items() if only is None or name in only}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--data-dir")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--users", type=int, default=300, help="simulated users per seed")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--drift-at", type=int, default=10)
    ap.add_argument("--draws", type=int, default=100, help="Monte Carlo draws for the propensities")
    ap.add_argument("--offline-users", type=int, default=0, help="at most this many users offline (0: all)")
    ap.add_argument("--prior-strength", type=float, default=None,
                    help="use this Thompson prior_strength instead of choosing it on the validation seed")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = load_bundle(args.bundle)
    data = load_prepared(args.data, args.data_dir)
    split = leave_one_out(data)
    if split.n_items != model.n_items_:
        raise SystemExit(f"{args.bundle} has {model.n_items_} items but {args.data} prepares {split.n_items}")
    rng = np.random.default_rng(0)
    tree = model.tree_

    # -- 1. offline: choose on validation, read test once ---------------------------------------------
    def sample(stage):
        u = split.eval_users(stage)
        return np.sort(rng.choice(u, args.offline_users, replace=False)) if 0 < args.offline_users < len(u) else u

    valid_users = sample("valid")
    grid = {f"sw{sw:g}_sp{sp:g}_h{h}": SlatePolicy(K, explore=False, score_weight=sw, spread=sp, head=h).fit(tree)
            for sw in SCORE_WEIGHTS for sp in SPREADS for h in HEADS}
    valid = offline(model, split, "valid", valid_users, {"greedy": GreedyPolicy(K).fit(tree), **grid})
    greedy_valid = valid["greedy"]["ndcg"].mean()
    table = {name: {"ndcg@10": float(v["ndcg"].mean()), "coverage": float(np.nanmean(v["coverage"]))}
             for name, v in valid.items()}
    ok = [n for n in grid if table[n]["ndcg@10"] >= NDCG_TOLERANCE * greedy_valid]
    chosen = max(ok, key=lambda n: table[n]["coverage"]) if ok else max(grid, key=lambda n: table[n]["ndcg@10"])
    sw, sp, head = grid[chosen].score_weight, grid[chosen].spread, grid[chosen].head
    print(f"valid: greedy NDCG@10 {greedy_valid:.4f}; chosen {chosen}: {table[chosen]}", flush=True)
    test_users = sample("test")
    test = offline(model, split, "test", test_users, {
        "greedy": GreedyPolicy(K).fit(tree),
        "slate": SlatePolicy(K, explore=False, score_weight=sw, spread=sp, head=head).fit(tree),
        "slate_ts_one_draw": SlatePolicy(K, explore=True, score_weight=sw, spread=sp, head=head, n_draws=1).fit(tree)})
    diff = test["slate"]["ndcg"] - test["greedy"]["ndcg"]
    offline_out = {"valid_grid": table, "chosen": {"score_weight": sw, "spread": sp, "head": head},
                   "valid_users": int(len(valid_users)), "test_users": int(len(test_users)),
                   "test": {name: {"ndcg@10": mean_ci(v["ndcg"]), "coverage": mean_ci(v["coverage"]),
                                   "diversity": mean_ci(v["diversity"])} for name, v in test.items()},
                   "test_ndcg_ratio": float(test["slate"]["ndcg"].mean() / test["greedy"]["ndcg"].mean()),
                   "test_ndcg_diff": mean_ci(diff)}
    print(json.dumps(offline_out["test"], indent=1), flush=True)

    # -- 2. simulator: exploration strength on a validation seed, then the seeds ----------------------
    pool = split.eval_users("test")
    val_users = np.sort(np.random.default_rng(VALIDATION_SEED).choice(pool, args.users, replace=False))
    strength_clicks = {}
    for s in (PRIOR_STRENGTHS if args.prior_strength is None else ()):
        res = simulate(model, split, val_users, args, VALIDATION_SEED, s, sp, sw, head, only=("slate_ts",))
        strength_clicks[s] = res["slate_ts"].summary()["clicks_per_user"]
    strength = max(strength_clicks, key=strength_clicks.get) if strength_clicks else args.prior_strength
    print(f"validation seed: clicks by prior_strength {strength_clicks}; chosen {strength}", flush=True)
    runs = {}
    for seed in args.seeds:
        users = np.sort(np.random.default_rng(seed).choice(pool, args.users, replace=False))
        runs[seed] = simulate(model, split, users, args, seed, strength, sp, sw, head)
        print(f"seed {seed}: " + "; ".join(f"{n} {r.summary()['clicks_per_user']:.3f}" for n, r in runs[seed].items()),
              flush=True)
    names = list(runs[args.seeds[0]])
    summary = {n: {key: seeds_ci([runs[s][n].summary()[key] for s in args.seeds])
                   for key in runs[args.seeds[0]][n].summary() if key not in ("policy", "users", "steps")}
               for n in names}
    paired = {}
    for n in names:
        if n == "greedy":
            continue
        d = np.concatenate([runs[s][n].clicks.sum(1) - runs[s]["greedy"].clicks.sum(1) for s in args.seeds])
        g = np.concatenate([runs[s]["greedy"].clicks.sum(1) for s in args.seeds])
        paired[n] = {"clicks_minus_greedy_per_user": mean_ci(d), "relative": float(d.mean() / g.mean()),
                     "per_seed": [float(runs[s][n].clicks.sum(1).mean() - runs[s]["greedy"].clicks.sum(1).mean())
                                  for s in args.seeds]}
    curves = {n: {"clicks_per_step": np.mean([runs[s][n].clicks.mean(0) for s in args.seeds], 0).tolist(),
                  "new_share_per_step": np.mean([runs[s][n].new_share.mean(0) for s in args.seeds], 0).tolist()}
              for n in names}
    result = {"dataset": args.data, "bundle": args.bundle, "split_hash": split.fingerprint(), "k": K,
              "seeds": args.seeds, "users_per_seed": args.users, "steps": args.steps, "drift_at": args.drift_at,
              "mc_draws": args.draws, "offline": offline_out,
              "simulator": {"prior_strength_validation": {str(k): v for k, v in strength_clicks.items()},
                            "prior_strength": strength, "summary": summary, "paired_vs_greedy": paired,
                            "curves": curves},
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": _machine(),
              "code_version": _git(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "wall_seconds": round(time.perf_counter() - t0, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"policy_{Path(args.data).name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    _plots(result, stem)
    print(f"wrote {stem}.json/.md and plots in {result['wall_seconds']} s")
    return 0


def _fmt(v, digits=3) -> str:
    return f"{v[0]:.{digits}f} [{v[1]:.{digits}f}, {v[2]:.{digits}f}]"


def _markdown(r: dict) -> str:
    o, s = r["offline"], r["simulator"]
    lines = [f"# Interest-aware slates on {r['dataset']} (k={r['k']})", "",
             f"## Offline: real leave-one-out test ({o['test_users']} users), first slate, no feedback", "",
             f"Slate setting chosen on validation ({o['valid_users']} users, {len(o['valid_grid']) - 1} settings): "
             f"score_weight {o['chosen']['score_weight']}, spread {o['chosen']['spread']}, head "
             f"{o['chosen'].get('head', 0)} (most coverage with valid NDCG@10 >= {NDCG_TOLERANCE} x greedy).", "",
             "| policy | NDCG@10 [95% CI] | level-1 coverage | tree diversity |", "|---|---|---|---|"]
    for name, v in o["test"].items():
        lines.append(f"| {name} | {_fmt(v['ndcg@10'], 4)} | {_fmt(v['coverage'])} | {_fmt(v['diversity'])} |")
    lines += ["", f"Slate / greedy NDCG@10: {o['test_ndcg_ratio']:.3f}; paired difference "
                  f"{_fmt(o['test_ndcg_diff'], 4)}.", "",
              f"## Simulator: {r['users_per_seed']} test users x seeds {r['seeds']}, {r['steps']} slates each, "
              f"drift at slate {r['drift_at']}", "",
              f"Thompson prior_strength {s['prior_strength']} ("
              + (f"chosen on a validation seed: clicks per user {s['prior_strength_validation']}"
                 if s['prior_strength_validation'] else "given, not chosen here")
              + "). Mean over seeds [t interval over the seeds].", "",
              "| policy | clicks / user | before drift | after drift | coverage | diversity | recovered | "
              "slates to recover (median, censored) |", "|---|---|---|---|---|---|---|---|"]
    for name, v in s["summary"].items():
        lines.append(f"| {name} | {_fmt(v['clicks_per_user'], 2)} | {v['clicks_before_drift'][0]:.2f} | "
                     f"{v['clicks_after_drift'][0]:.2f} | {v['coverage'][0]:.3f} | {v['diversity'][0]:.3f} | "
                     f"{v['recovered'][0]:.2f} | {v['recovery_median'][0]:.1f} |")
    lines += ["", "Paired per user (all seeds pooled), clicks per user minus greedy's [95% CI]:", ""]
    for name, v in s["paired_vs_greedy"].items():
        lines.append(f"- {name}: {_fmt(v['clicks_minus_greedy_per_user'], 3)} ({100 * v['relative']:+.1f}%); "
                     f"per seed {', '.join(f'{x:+.3f}' for x in v['per_seed'])}")
    lines += ["", "'recovered': share of users whose slate put more than half its slots on the planted new "
                  "interest within the run; 'slates to recover': slates after the drift until it did (users who "
                  "never did count as the horizon + 1). Coverage: share of the user's level-1 interests "
                  f"(>= {INTEREST_MIN_SHARE} of the long-term profile) with a slot; diversity: mean tree distance "
                  "between the slate's items.", ""]
    if any(n.startswith("mabwiser") for n in s["summary"]):
        lines += ["The learner compared with a maintained library: `mabwiser_ts` is `slate_ts` with each level-1 "
                  "node's click rate drawn by mabwiser's Thompson sampling (one bandit per user, Beta(1, 1) on every "
                  "node, no forgetting) instead of arborec's Beta posterior (prior from the model's interest, "
                  "refreshed at every slate; old counts x `memory` per slate); `mabwiser_ts_prior` gives mabwiser the "
                  "model's prior as rounded pseudo-observations at the user's first slate. Slot allocation, items "
                  "and order are the slate policy's in all three.", ""]
    lines += [
              f"Command: `{r['command']}`; {r['machine']}; {r['wall_seconds']} s; code {r['code_version']}.", ""]
    return "\n".join(lines)


def _plots(r: dict, stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = r["simulator"]["curves"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        ax.plot(np.arange(1, r["steps"] + 1), np.cumsum(c["clicks_per_step"]), label=name)
    ax.axvline(r["drift_at"] + 0.5, color="grey", ls="--", lw=1, label="planted drift")
    ax.set(xlabel="slate", ylabel="cumulative clicks per user", title=f"{r['dataset']}: reward over time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{stem}_reward.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        ax.plot(np.arange(1, r["steps"] + 1), c["new_share_per_step"], label=name)
    ax.axvline(r["drift_at"] + 0.5, color="grey", ls="--", lw=1)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set(xlabel="slate", ylabel="share of slots on the new interest", title=f"{r['dataset']}: drift recovery")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{stem}_drift.png", dpi=110)
    plt.close(fig)


def _machine() -> str:
    from arborec.evaluate import machine_line

    return f"{machine_line()}; {torch.get_num_threads()} torch thread(s)"


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
