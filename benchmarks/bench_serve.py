"""Load benchmark of `arborec serve`: server in one process, load generator in another, on loopback.

Measures (all client-side, wall clock; the client is a minimal keep-alive HTTP/1.1 one, so its own CPU
cost stays small next to the server's on a shared 2-core machine):
  1. recommendation latency, one request at a time (p50, p99);
  2. event-to-updated-recommendation latency: POST one event, then GET the user's recommendations,
     checking the answer reflects the event (the item is filtered as history, n_events grew);
  3. sustained throughput for --duration seconds with --concurrency connections (90% reads, 10% writes),
     counting every non-2xx answer or transport error;
  4. the cost of SQLite's synchronous=FULL versus NORMAL per committed event (in-process, store only);
  5. optionally (--fuzz-examples N) a longer schemathesis run of the test suite's fuzz.

Usage:
  python benchmarks/bench_serve.py --data amazon-beauty --data-dir ../shared/data --model ease \
      --duration 60 --concurrency 8 --output benchmarks/results/serve_amazon-beauty.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentiles(values) -> dict:
    v = np.asarray(values, dtype=np.float64) * 1000.0
    return {"n": int(len(v)), "p50_ms": round(float(np.percentile(v, 50)), 3),
            "p90_ms": round(float(np.percentile(v, 90)), 3), "p99_ms": round(float(np.percentile(v, 99)), 3),
            "max_ms": round(float(v.max()), 3), "mean_ms": round(float(v.mean()), 3)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- a minimal keep-alive HTTP/1.1 client: the load generator's own cost stays small ----------------
def _request_bytes(method: str, path: str, body, headers: dict) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + data


def _parse_head(head: bytes) -> tuple[int, int]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length"))
    return status, length


class RawClient:
    """One keep-alive connection; ``request`` returns (status, body bytes)."""

    def __init__(self, host: str, port: int, headers: dict | None = None):
        self.headers = dict(headers or {})  # sent with every request (the API key: reads need one too)
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, bytes]:
        self.sock.sendall(_request_bytes(method, path, body, {**self.headers, **(headers or {})}))
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status, length = _parse_head(head)
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        payload, self.buf = self.buf[:length], self.buf[length:]
        return status, payload

    def close(self) -> None:
        self.sock.close()


# -- the load generator (runs in its own process) ----------------------------------------------------
def load_process(host: str, port: int, key: str, users: list[str], items: list[str], args: dict, out: mp.Queue) -> None:
    rng = random.Random(0)
    auth = {"X-API-Key": key}
    result: dict = {}
    http = RawClient(host, port, headers=auth)
    for _ in range(300):  # warm-up: connections, caches, code paths
        http.request("GET", f"/users/{rng.choice(users)}/recommendations?k=10")

    # 1. recommendation latency, sequential
    lat = []
    for _ in range(args["n_latency"]):
        user = rng.choice(users)
        t0 = time.perf_counter()
        status, body = http.request("GET", f"/users/{user}/recommendations?k=10&explain=true")
        lat.append(time.perf_counter() - t0)
        assert status == 200, body
    result["recommendations"] = percentiles(lat)

    # 2. event -> updated recommendation
    total, post_lat, get_lat, reflected = [], [], [], 0
    for j in range(args["n_fresh"]):
        user, item = rng.choice(users), rng.choice(items)
        before = json.loads(http.request("GET", f"/users/{user}/interests")[1])["n_events"]
        t0 = time.perf_counter()
        p_status, p_body = http.request("POST", "/events", {"user": user, "item": item,
                                                            "timestamp": 1_700_000_000 + j}, auth)
        t1 = time.perf_counter()
        g_status, g_body = http.request("GET", f"/users/{user}/recommendations?k=10")
        t2 = time.perf_counter()
        assert p_status == 200 and g_status == 200, (p_body, g_body)
        total.append(t2 - t0)
        post_lat.append(t1 - t0)
        get_lat.append(t2 - t1)
        after = json.loads(http.request("GET", f"/users/{user}/interests")[1])["n_events"]
        reflected += int(after == before + 1 and item not in {x["item"] for x in json.loads(g_body)["items"]})
    result["event_to_recommendation"] = percentiles(total)
    result["event_post"] = percentiles(post_lat)
    result["recommendation_after_event"] = percentiles(get_lat)
    result["event_reflected_fraction"] = reflected / args["n_fresh"]
    http.close()

    # 3. sustained throughput
    result["sustained"] = asyncio.run(sustained(host, port, auth, users, items, args["duration"],
                                                args["concurrency"], args["write_fraction"]))
    out.put(result)


async def sustained(host, port, auth, users, items, duration, concurrency, write_fraction) -> dict:
    counts = {"ok": 0, "errors": 0, "reads": 0, "writes": 0}
    lat: list[float] = []
    first_errors: list[str] = []
    stop = time.perf_counter() + duration

    async def worker(w: int):
        rng = random.Random(1000 + w)
        reader, writer = await asyncio.open_connection(host, port)
        j = 0
        while time.perf_counter() < stop:
            j += 1
            t0 = time.perf_counter()
            try:
                if rng.random() < write_fraction:
                    counts["writes"] += 1
                    raw = _request_bytes("POST", "/events", {"user": rng.choice(users), "item": rng.choice(items),
                                                             "timestamp": 1_750_000_000 + j}, auth)
                else:
                    counts["reads"] += 1
                    raw = _request_bytes("GET", f"/users/{rng.choice(users)}/recommendations?k=10", None, auth)
                writer.write(raw)
                await writer.drain()
                status, length = _parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
                body = await reader.readexactly(length)
                ok = status == 200
                if not ok and len(first_errors) < 5:
                    first_errors.append(f"{status}: {body[:200]!r}")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                ok = False
                if len(first_errors) < 5:
                    first_errors.append(repr(exc))
                reader, writer = await asyncio.open_connection(host, port)
            lat.append(time.perf_counter() - t0)
            counts["ok" if ok else "errors"] += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"duration_s": round(elapsed, 2), "concurrency": concurrency, "write_fraction": write_fraction,
            "requests": counts["ok"] + counts["errors"], "errors": counts["errors"],
            "requests_per_s": round((counts["ok"] + counts["errors"]) / elapsed, 1), "reads": counts["reads"],
            "writes": counts["writes"], "latency": percentiles(lat), "first_errors": first_errors}


# -- SQLite synchronous levels (in-process, the store alone) ------------------------------------------
def sqlite_commit_cost(n: int = 500) -> dict:
    from arborec.serve.store import Store

    out = {}
    for mode in ("FULL", "NORMAL"):
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/bench.db", sqlite_synchronous=mode)
            lat = []
            for j in range(n):
                t0 = time.perf_counter()
                store.add_events(rows=[{"user_id": f"u{j % 50}", "item_id": f"i{j}", "timestamp": j,
                                        "event_type": "view"}],
                                 user_states={f"u{j % 50}": {"n_events": j, "last_timestamp": j, "state": {}}})
                lat.append(time.perf_counter() - t0)
            store.close()
        out[mode] = percentiles(lat)
    return out


def summarize(paths: list[str], out: str) -> None:
    """A Markdown table of one or more result files (one column per file)."""
    records = [json.loads(Path(p).read_text()) for p in paths]
    rows = [
        ("model (retrieval)", lambda r: f"{r['model']} ({r['health']['retrieval']})"),
        ("store", lambda r: f"SQLite WAL, synchronous={r['sqlite_synchronous']}"),
        ("recommendations p50 / p99 (ms)", lambda r: f"{r['recommendations']['p50_ms']:.1f} / {r['recommendations']['p99_ms']:.1f}"),
        ("event -> updated recommendation p50 / p99 (ms)",
         lambda r: f"{r['event_to_recommendation']['p50_ms']:.1f} / {r['event_to_recommendation']['p99_ms']:.1f}"),
        ("  of which POST /events p50 / p99 (ms)", lambda r: f"{r['event_post']['p50_ms']:.1f} / {r['event_post']['p99_ms']:.1f}"),
        ("events reflected in the next answer", lambda r: f"{100 * r['event_reflected_fraction']:.0f}%"),
        ("sustained requests/s (errors)", lambda r: f"{r['sustained']['requests_per_s']:.0f} ({r['sustained']['errors']} errors in "
                                                    f"{r['sustained']['requests']:,} requests, {r['sustained']['duration_s']:.0f} s)"),
        ("  latency under load p50 / p99 (ms)",
         lambda r: f"{r['sustained']['latency']['p50_ms']:.1f} / {r['sustained']['latency']['p99_ms']:.1f}"),
        ("one committed event, store only, p50 / p99 (ms)",
         lambda r: f"{r['sqlite_commit'][r['sqlite_synchronous']]['p50_ms']:.2f} / "
                   f"{r['sqlite_commit'][r['sqlite_synchronous']]['p99_ms']:.2f}"),
        ("server start (fit included) / peak RSS", lambda r: f"{r['server_startup_s']:.0f} s / {r['server_peak_rss_mb']:,} MiB"),
        ("load average before -> after", lambda r: f"{r['load_average_before'][0]} -> {r['load_average_after'][0]}"),
    ]
    lines = ["| | " + " | ".join(Path(p).stem for p in paths) + " |", "|---" * (len(paths) + 1) + "|"]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in records) + " |")
    fuzz = [r["fuzz"] for r in records if "fuzz" in r]
    text = "\n".join(lines) + "\n"
    if fuzz:
        f = fuzz[0]
        text += (f"\nSchema fuzz (schemathesis, {f['examples_per_operation']} examples per operation, every "
                 f"operation, with and without the key): {'no 5xx' if f['passed'] else 'FAILED'} ({f['summary']}).\n")
    text += "\nCommands:\n\n" + "\n".join(f"    {r['command']}" for r in records) + "\n"
    Path(out).write_text(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="amazon-beauty")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--model", default="ease")
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--bundle", help="serve this arborec bundle (ModelScorer) instead of fitting --model")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sustained load")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--write-fraction", type=float, default=0.1)
    parser.add_argument("--n-latency", type=int, default=2000)
    parser.add_argument("--n-fresh", type=int, default=500)
    parser.add_argument("--sync", default="NORMAL", help="SQLite synchronous level of the server (default: NORMAL)")
    parser.add_argument("--fuzz-examples", type=int, default=0, help="also run the schema fuzz with N examples")
    parser.add_argument("--output", default=None)
    parser.add_argument("--summarize", nargs="+", metavar="JSON", help="only write a Markdown table of these results")
    parser.add_argument("--markdown", default="benchmarks/results/serve.md", help="where --summarize writes")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.markdown)
        return 0

    from arborec.data import load_prepared
    from arborec.evaluate import code_version, machine, write_json
    from arborec.serve.security import make_api_key

    if args.data == "synthetic":  # a quick check of the script itself
        from arborec.data import make_synthetic, prepare

        data = prepare(make_synthetic())
    else:
        data = load_prepared(args.data, data_dir=args.data_dir)
    users = [str(u) for u in data.user_ids]
    items = [str(i) for i in data.item_ids]
    key, digest = make_api_key()
    tmp = tempfile.mkdtemp(prefix="arborec-bench-")
    port = free_port()
    model_args = ["--bundle", args.bundle] if args.bundle else ["--model", args.model,
                                                                *sum((["--param", p] for p in args.param), [])]
    cmd = [sys.executable, "-m", "arborec", "-q", "serve", "--data", args.data, "--data-dir", args.data_dir,
           *model_args, "--db", f"sqlite:///{tmp}/serve.db", "--port", str(port), "--api-key-hash", digest]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "ARBOREC_SQLITE_SYNCHRONOUS": args.sync}
    print("server:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    server = subprocess.Popen(cmd, cwd=ROOT, env=env)
    import httpx

    while True:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    startup = time.perf_counter() - t0
    health = httpx.get(f"http://127.0.0.1:{port}/health").json()
    print(f"server ready in {startup:.1f} s: {health}", flush=True)

    load_before = load_average()
    queue: mp.Queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=load_process, args=(
        "127.0.0.1", port, key, users, items,
        {"n_latency": args.n_latency, "n_fresh": args.n_fresh, "duration": args.duration,
         "concurrency": args.concurrency, "write_fraction": args.write_fraction}, queue))
    proc.start()
    result = queue.get()
    proc.join()
    load_after = load_average()
    with open(f"/proc/{server.pid}/status") as f:
        rss = next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM"))
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": key}).text
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)

    result["sqlite_commit"] = sqlite_commit_cost()
    if args.fuzz_examples:
        t1 = time.perf_counter()
        fuzz = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_serve.py", "-k", "fuzz", "-p",
                               "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True,
                              env={**env, "ARBOREC_FUZZ_EXAMPLES": str(args.fuzz_examples)})
        result["fuzz"] = {"examples_per_operation": args.fuzz_examples, "passed": fuzz.returncode == 0,
                          "seconds": round(time.perf_counter() - t1, 1), "summary": fuzz.stdout.strip().splitlines()[-1]}
    record = {
        "benchmark": "serve", "dataset": data.name, "n_users": data.n_users, "n_items": data.n_items,
        "n_events": int(len(data.interactions)), "model": "arborec (bundle)" if args.bundle else args.model,
        "params": args.param,
        "sqlite_synchronous": args.sync, "server_startup_s": round(startup, 1), "server_peak_rss_mb": rss,
        "health": health, **result,
        "load_average_before": load_before, "load_average_after": load_after,
        "served_requests_metric_lines": sum(1 for line in metrics.splitlines() if line.startswith("arborec_http_requests_total")),
        "machine": machine(), "code_version": code_version(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
    }
    print(json.dumps({k: v for k, v in record.items() if k not in ("machine",)}, indent=1))
    if args.output:
        write_json(record, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
