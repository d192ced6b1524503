"""Recommendation latency of policy slates against greedy serving: a server process, this client, loopback.

Starts `arborec serve --bundle BUNDLE --data DATA`, then asks for one user's top-k at a time,
alternating `?policy=model` (greedy by score) and `?policy=slate` (the interest-aware policy, which
also logs the slate with its propensities in the store), over random known users; reports p50 / p99
of each and their ratio. Client-side wall clock, keep-alive HTTP/1.1 (httpx).

    OMP_NUM_THREADS=1 python benchmarks/bench_policy_serve.py --bundle runs/amazon-beauty-arborec \
        --data amazon-beauty --data-dir /work/shared/data --n 1000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


KEY = "bench-policy-serve-key-0123456789abcdef01"  # all scopes (--api-key-hash): reads need the read scope


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    import httpx

    sys.path.insert(0, str(ROOT))
    from arborec.data import load_prepared
    from arborec.evaluate import machine_line
    from arborec.serve import hash_api_key

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--data-dir")
    ap.add_argument("--n", type=int, default=1000, help="requests per policy")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--output", default=None)
    args = ap.parse_args(argv)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "arborec", "-q", "serve", "--bundle", args.bundle, "--data", args.data,
               "--db", f"sqlite:///{tmp}/store.db", "--port", str(port), "--api-key-hash", hash_api_key(KEY)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(1)
            start_s = time.perf_counter() - t0
            # the known users: the data's (bundles no longer carry users' histories; the server reads them from --data)
            users = [str(u) for u in load_prepared(args.data, args.data_dir).user_ids]
            rng = np.random.default_rng(0)
            lat = {"model": [], "slate": []}
            with httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": KEY}) as client:
                for policy in ("model", "slate"):  # warm up both paths
                    for u in rng.choice(users, 20):
                        client.get(f"/users/{u}/recommendations", params={"k": args.k, "policy": policy})
                for i in range(2 * args.n):
                    policy = ("model", "slate")[i % 2]
                    user = users[int(rng.integers(len(users)))]
                    t = time.perf_counter()
                    r = client.get(f"/users/{user}/recommendations", params={"k": args.k, "policy": policy})
                    lat[policy].append(time.perf_counter() - t)
                    if r.status_code != 200:
                        raise SystemExit(f"{policy}: HTTP {r.status_code}: {r.text[:500]}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    out = {name: {"p50_ms": 1000 * float(np.percentile(v, 50)), "p99_ms": 1000 * float(np.percentile(v, 99)),
                  "n": len(v)} for name, v in lat.items()}
    out["p99_ratio_slate_over_model"] = out["slate"]["p99_ms"] / out["model"]["p99_ms"]
    out["p50_ratio_slate_over_model"] = out["slate"]["p50_ms"] / out["model"]["p50_ms"]
    out.update({"bundle": args.bundle, "data": args.data, "k": args.k, "server_start_s": round(start_s, 1),
                "machine": f"{machine_line()}; server 1 torch thread",
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    print(json.dumps(out, indent=1))
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
