"""Memory benchmark of `arborec serve` with the bounded user cache: many distinct users streaming events.

A server (synthetic catalogue, EASE, SQLite store, ``ARBOREC_USER_CACHE_SIZE`` users in memory; its event-
application process too unless ``ARBOREC_EVENTS_PROCESS=0``) receives events of ``--users`` distinct users in
batches of 1000 (one event per user per batch, every user seen ``--events-per-user`` times) over loopback; the
memory of the server's processes (VmRSS summed, and PSS, /proc) is sampled all along. Recommendation latency (one
request at a time) is measured warm (the same few users, all in the cache: back to back, and paced like the reads
during the stream), warm with ``--busy-loops`` spinning processes beside the server (no events: what sharing the
cores alone costs), while the stream runs, and after it for random streamed users (mostly evicted: rebuilt from
the store).

Usage:
  OMP_NUM_THREADS=1 python benchmarks/bench_serve_memory.py --users 1000000 --cache 20000 \
      --output benchmarks/results/serve_memory.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

KEY = "bench-memory-key-0123456789abcdef0123456789"


def server_pids(pid: int) -> list[int]:
    """The server process and its children (the event-application process, when it runs one)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def _proc_kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of the server's processes together, MiB. RSS is summed (pages the child shares with its
    parent, copy-on-write, are counted twice: an upper bound); PSS splits shared pages between them."""
    pids = server_pids(pid)
    return (sum(_proc_kib(f"/proc/{p}/status", "VmRSS:") for p in pids) / 1024,
            sum(_proc_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids) / 1024)


def busy_loops(n: int) -> list[subprocess.Popen]:
    """``n`` processes spinning on a core each: the CPU a saturated stream takes, without any event."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def percentiles(timings) -> dict:
    """p50, p99 and max of (client seconds, server seconds) pairs, in ms: the client's and the server's own."""
    v = np.asarray(timings, dtype=np.float64).reshape(-1, 2) * 1000.0
    client, server = v[:, 0], v[:, 1]
    return {"n": int(len(v)), "p50_ms": round(float(np.percentile(client, 50)), 3),
            "p99_ms": round(float(np.percentile(client, 99)), 3), "max_ms": round(float(client.max()), 3),
            "server_p50_ms": round(float(np.percentile(server, 50)), 3),
            "server_p99_ms": round(float(np.percentile(server, 99)), 3)}


def time_recommendations(http, users: list[str], n: int, rng: random.Random) -> list[tuple[float, float]]:
    """(client seconds, server seconds from the Server-Timing header) of ``n`` requests, one at a time."""
    out = []
    for _ in range(n):
        user = rng.choice(users)
        t0 = time.perf_counter()
        response = http.get(f"/users/{user}/recommendations", params={"k": 10})
        elapsed = time.perf_counter() - t0
        assert response.status_code == 200, response.text
        out.append((elapsed, float(response.headers["server-timing"].split("dur=")[1]) / 1000.0))
    return out


def reader(port: int, known: list[str], streamed, stop, results, n: int | None = None) -> None:
    """Recommendations of random streamed users (``known`` ones before any), one at a time, every 50 ms, until
    ``stop`` (or ``n`` of them); latencies to ``results``."""
    import httpx

    local, out = random.Random(1), []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=60) as http:
        while not stop.is_set() and (n is None or len(out) < n):
            upto = streamed.value
            pool = known if upto == 0 else [f"m{local.randrange(upto)}"]
            out.extend(time_recommendations(http, pool, 1, local))
            stop.wait(0.05)
    results.put(out)


def write_markdown(result: dict, path: Path) -> None:
    """A short Markdown report of one run."""
    r, m = result, result["rss_mib"]
    row = lambda name, p: (f"| {name} | {p['n']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} | "  # noqa: E731
                           f"{p.get('server_p50_ms', '')} | {p.get('server_p99_ms', '')} |")
    split = r.get("events_process", False)
    processes = ("the serving process and its event-application process (`ARBOREC_EVENTS_PROCESS`, the default)"
                 if split else "one process (`ARBOREC_EVENTS_PROCESS=0`)")
    lines = [
        f"# `arborec serve` with {r['users']:,} distinct users streaming events (bounded user cache)", "",
        f"- machine: {r['machine']}; load average at the end {r['load_average_end']}",
        f"- command: `{r['command']}`", f"- code: {r['code_version']}, date: {r['date']}",
        f"- server: synthetic catalogue, EASE, SQLite store (WAL, synchronous=NORMAL), "
        f"`ARBOREC_USER_CACHE_SIZE={r['cache_size']}`, {processes}; {r['events']:,} events in batches of "
        f"{r['batch']} (one event per user per batch, each with an event_id), over loopback, "
        + (f"paced at {r['rate']:,.0f} events/s" if r.get("rate") else "as fast as the server takes them (saturated)"),
        "", "## Memory of the server's processes", "",
        "RSS summed over the server's processes (pages the event process shares with the serving one, copy-on-write, "
        "counted twice: an upper bound); PSS: shared pages split between them.", "",
        f"- RSS before the stream: {m['before_stream']} MiB; maximum during it: **{m['max']} MiB**; at the end: "
        f"{m['end']} MiB",
        f"- after 1/4, 2/4, 3/4 and all of the users: {', '.join(f'{x} MiB' for x in m['at_quarters'])}"]
    if "pss_mib" in r:
        lines.append(f"- PSS before the stream: {r['pss_mib']['before_stream']} MiB; maximum during it: "
                     f"**{r['pss_mib']['max']} MiB**")
    lines += [
        f"- users in memory at the end: {r['users_in_memory_end']:,} (at most the cache size in each process); "
        f"evicted: {int(r['users_evicted']):,}",
        f"- stream: {r['stream_s']} s, {r['events_per_s']} events/s",
        "", "## Recommendation latency (one request at a time, k=10)", "",
        "Client: the reading process's own clock (it shares the 2 cores with the server and the streaming client, "
        "so it includes waiting for a core). Server: the service's time to answer (its Server-Timing header).", "",
        "| when | n | client p50 ms | client p99 ms | client max ms | server p50 ms | server p99 ms |",
        "|---|---|---|---|---|---|---|",
        row("warm: 50 cached users, before the stream", r["recommend_warm"])]
    if r.get("recommend_warm_paced"):
        lines.append(row("warm, paced like the reads during the stream (one every 50 ms, from another process)",
                         r["recommend_warm_paced"]))
    if r.get("recommend_warm_busy_loops"):
        lines.append(row(f"warm, with {r['busy_loops']} busy loops beside the server (no events)",
                         r["recommend_warm_busy_loops"]))
    lines += [
        row("during the stream (random streamed users, another process)", r["recommend_during_stream"]),
        row("after: cached users (interleaved with the next row)", r["recommend_after_stream_cached_users"]),
        row("after: random streamed users (mostly evicted: rebuilt from the store)",
            r["recommend_after_stream_random_users"]),
        "", f"- p99 of evicted users / p99 of cached users, interleaved after the stream: "
            f"**{r['p99_evicted_over_cached']}x**",
        f"- p99 during the stream / warm p99: client **{r['p99_during_over_warm']}x**"
        + (f", server **{r['server_p99_during_over_warm']}x**" if "server_p99_during_over_warm" in r else "")]
    if "p99_during_over_warm_paced" in r:
        lines.append(f"- p99 during the stream / p99 of the warm reads paced alike: "
                     f"**{r['p99_during_over_warm_paced']}x**")
    if "p99_busy_loops_over_warm" in r:
        lines.append(f"- p99 with {r['busy_loops']} busy loops beside (no events) / warm p99: "
                     f"**{r['p99_busy_loops_over_warm']}x** (what sharing the cores costs a read on this machine)")
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    import httpx

    from arborec.data import make_synthetic, prepare
    from arborec.evaluate import machine_line
    from arborec.serve import hash_api_key
    from serve_helpers import HashingEncoder, free_port, start_server, synthetic_vectors

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events-per-user", type=int, default=1)
    parser.add_argument("--cache", type=int, default=20_000, help="ARBOREC_USER_CACHE_SIZE of the server")
    parser.add_argument("--n-latency", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000, help="events per POST of the stream")
    parser.add_argument("--rate", type=float, default=None,
                        help="events per second the stream is paced at (default: as fast as the server takes them)")
    parser.add_argument("--client-nice", type=int, default=0,
                        help="OS niceness of the streaming client (the load generator, which in production runs on "
                             "other machines); the server and the reading process keep 0")
    parser.add_argument("--busy-loops", type=int, default=2,
                        help="before the stream, warm reads are also timed with this many busy loops beside the "
                             "server (no events): what sharing the cores costs a read on this machine (0: skip)")
    parser.add_argument("--output", default="benchmarks/results/serve_memory.json")
    parser.add_argument("--summarize", metavar="JSON", help="only write the Markdown report of this result")
    args = parser.parse_args()
    if args.summarize:
        write_markdown(json.loads(Path(args.summarize).read_text()), Path(args.summarize).with_suffix(".md"))
        return 0

    data = prepare(make_synthetic())
    items = [str(i) for i in data.item_ids]
    tmp = Path(tempfile.mkdtemp(prefix="arborec-mem-"))
    np.save(tmp / "vectors.npy", synthetic_vectors(data, HashingEncoder()))
    port = free_port()
    env = {"ARBOREC_USER_CACHE_SIZE": str(args.cache), "ARBOREC_RATE_LIMIT": "100000/second",
           "ARBOREC_GENERATED_KEY_FILE": str(tmp / "unused.key")}
    server = start_server(["--data", "synthetic", "--vectors", str(tmp / "vectors.npy"), "--db",
                           f"sqlite:///{tmp / 'store.db'}", "--api-key-hash", hash_api_key(KEY)], port, env=env)
    samples: list[tuple[float, int, float, float]] = []  # (seconds, users streamed, RSS MiB, PSS MiB)
    streamed = [0]
    stop = threading.Event()
    t_start = time.perf_counter()

    def sample():
        while not stop.is_set():
            rss, pss = memory_mib(server.pid)
            samples.append((round(time.perf_counter() - t_start, 2), streamed[0], round(rss, 1), round(pss, 1)))
            stop.wait(0.5)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rng = random.Random(0)
    result: dict = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=60) as http:
            known = [str(u) for u in data.user_ids[:50]]
            time_recommendations(http, known, 100, rng)  # warm up
            warm = time_recommendations(http, known, args.n_latency, rng)
            rss_start, pss_start = memory_mib(server.pid)
            # the same reads, paced like those during the stream (one every 50 ms, from another process), no stream
            results = mp.Queue()
            paced_reader = mp.Process(target=reader, args=(port, known, mp.Value("q", 0), mp.Event(), results,
                                                           args.n_latency))
            paced_reader.start()
            warm_paced = results.get()
            paced_reader.join()
            warm_busy = []  # the machine's own share of the tail: warm reads while the cores are taken, no events
            if args.busy_loops:
                loops = busy_loops(args.busy_loops)
                try:
                    time.sleep(0.5)
                    warm_busy = time_recommendations(http, known, args.n_latency, rng)
                finally:
                    for loop in loops:
                        loop.kill()
                        loop.wait()
            # one recommendation request at a time while the stream runs, from another process (so the
            # streaming client's own work does not delay it)
            streamed_shared = mp.Value("q", 0)
            reader_stop = mp.Event()
            reading = mp.Process(target=reader, args=(port, known, streamed_shared, reader_stop, results))
            reading.start()
            if args.client_nice:  # after the server and the reader started: only this process is lowered
                os.nice(args.client_nice)
            t_stream = time.perf_counter()
            sent = 0
            ts = 1_700_000_000
            for round_ in range(args.events_per_user):
                for start in range(0, args.users, args.batch):
                    batch = [{"user": f"m{u}", "item": items[(u * 7 + round_) % len(items)], "timestamp": ts + round_,
                              "event_id": f"m{u}-{round_}"} for u in range(start, min(start + args.batch, args.users))]
                    if args.rate:  # paced: the batch leaves when the stream is due to have sent it
                        time.sleep(max(0.0, t_stream + sent / args.rate - time.perf_counter()))
                    response = http.post("/events", json={"events": batch})
                    assert response.status_code == 200, response.text
                    sent += len(batch)
                    streamed[0] = max(streamed[0], min(start + args.batch, args.users))
                    streamed_shared.value = streamed[0]
            stream_s = time.perf_counter() - t_stream
            reader_stop.set()
            during = results.get()
            reading.join()
            # after the stream, under the same load: cached users and random streamed users (mostly evicted,
            # rebuilt from the store) interleaved, one request at a time
            streamed_ids = [f"m{u}" for u in range(args.users)]
            warm_after, after = [], []
            for _ in range(args.n_latency):
                warm_after.extend(time_recommendations(http, known, 1, rng))
                after.extend(time_recommendations(http, streamed_ids, 1, rng))
            health = http.get("/health").json()
            metrics = http.get("/metrics").text
        rss = [s[2] for s in samples]
        n_events = args.users * args.events_per_user
        result = {
            "benchmark": "serve_memory", "users": args.users, "batch": args.batch, "events": n_events, "cache_size": args.cache,
            "rate": args.rate, "client_nice": args.client_nice,
            "stream_s": round(stream_s, 1), "events_per_s": round(n_events / stream_s, 1),
            "server_processes": len(server_pids(server.pid)),
            "events_process": os.environ.get("ARBOREC_EVENTS_PROCESS", "1") not in ("0", "false", "False"),
            "pss_mib": {"before_stream": round(pss_start, 1), "max": max(s[3] for s in samples),
                        "end": samples[-1][3]},
            "rss_mib": {"before_stream": round(rss_start, 1), "max": max(rss), "end": rss[-1],
                        "at_quarters": [next(s[2] for s in samples if s[1] >= q * args.users // 4) for q in (1, 2, 3, 4)
                                        if any(s[1] >= q * args.users // 4 for s in samples)]},
            "users_in_memory_end": health["n_users_live"],
            "users_evicted": float(next(line.split()[-1] for line in metrics.splitlines()
                                        if line.startswith("arborec_users_evicted "))),
            "recommend_warm": percentiles(warm), "recommend_warm_paced": percentiles(warm_paced),
            "recommend_during_stream": percentiles(during),
            "recommend_warm_busy_loops": percentiles(warm_busy) if warm_busy else None, "busy_loops": args.busy_loops,
            "recommend_after_stream_random_users": percentiles(after),
            "recommend_after_stream_cached_users": percentiles(warm_after),
            "server_recommend_latency_buckets": [line for line in metrics.splitlines() if line.startswith(
                "arborec_http_request_seconds_bucket") and "recommendations" in line],
            "rss_samples": samples[::max(1, len(samples) // 200)],
            "command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
            "machine": machine_line(),
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "code_version": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True).stdout.strip(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        result["p99_evicted_over_cached"] = round(result["recommend_after_stream_random_users"]["p99_ms"]
                                                  / result["recommend_after_stream_cached_users"]["p99_ms"], 2)
        result["p99_during_over_warm"] = round(result["recommend_during_stream"]["p99_ms"]
                                               / result["recommend_warm"]["p99_ms"], 2)
        result["server_p99_during_over_warm"] = round(result["recommend_during_stream"]["server_p99_ms"]
                                                      / result["recommend_warm"]["server_p99_ms"], 2)
        result["p99_during_over_warm_paced"] = round(result["recommend_during_stream"]["p99_ms"]
                                                     / result["recommend_warm_paced"]["p99_ms"], 2)
        if warm_busy:
            result["p99_busy_loops_over_warm"] = round(result["recommend_warm_busy_loops"]["p99_ms"]
                                                       / result["recommend_warm"]["p99_ms"], 2)
    finally:
        stop.set()
        server.kill()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(result, out.with_suffix(".md"))
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
