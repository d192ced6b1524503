"""The service keeps users' data safe: scopes on every route, forget (nothing left in the database, its WAL or a
later bundle), export, exactly-once event ids (also across a SIGKILL), bounded memory, 429s, retention, pseudonyms."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faiss")
pytest.importorskip("limits")

from fastapi.testclient import TestClient  # noqa: E402

from serve_helpers import HashingEncoder, free_port, make_service, start_server, synthetic_vectors  # noqa: E402

KEYS = {scope: f"{scope}-key-0123456789abcdef0123456789" for scope in ("read", "write", "admin", "metrics")}
ALL = "all-scopes-key-0123456789abcdef0123456789"

#: every operation of the API and the scope it needs (None: any caller). A new route must be added here.
REQUIRED = {
    ("post", "/events"): "write",
    ("get", "/users/{user_id}/recommendations"): "read",
    ("get", "/users/{user_id}/interests"): "read",
    ("delete", "/users/{user_id}"): "admin",
    ("get", "/users/{user_id}/export"): "admin",
    ("post", "/items"): "write",
    ("get", "/users/{user_id}/recent"): "read",
    ("get", "/items/search"): "read",
    ("post", "/feedback"): "write",
    ("get", "/segments"): None,
    ("get", "/health"): None,
    ("get", "/metrics"): "metrics",
}


def _settings(service, **update):
    from arborec.serve import hash_api_key

    keys = {scope: [hash_api_key(key)] for scope, key in KEYS.items()}
    return service.settings.model_copy(update={"api_key_hash": hash_api_key(ALL), "api_keys": keys, **update})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(service, data) over a fresh SQLite store, and an app with one key per scope."""
    from arborec.serve import hash_api_key

    db = tmp_path_factory.mktemp("privacy") / "store.db"
    return make_service(f"sqlite:///{db}", hash_api_key(ALL), n_users=150)


def _client(service, key: str | None = ALL, **update) -> TestClient:
    from arborec.serve import create_app

    return TestClient(create_app(service, _settings(service, **update)), headers={"X-API-Key": key} if key else {})


def test_every_route_enforces_its_scope(served):
    """Table-driven over the OpenAPI routes: no key -> 401, a key without the scope -> 403, with it -> allowed."""
    service, data = served
    app_client = _client(service, key=None)
    operations = {(method, path) for path, ops in app_client.get("/openapi.json").json()["paths"].items()
                  for method in ops}
    assert operations == set(REQUIRED)  # a route missing from the table fails here
    item = service.catalog.item_ids[0]
    bodies = {"/events": {"user": "scope-probe", "item": item, "timestamp": 1_700_000_000},
              "/items": {"items": []}}  # invalid (422) once authorised: nothing is added
    for (method, path), needed in REQUIRED.items():
        url = path.replace("{user_id}", "scope-probe")

        def call(key):
            headers = {"X-API-Key": key} if key else {}
            return app_client.request(method.upper(), url, headers=headers, json=bodies.get(path))
        if needed is None:
            assert call(None).status_code == 200, path
        else:
            assert call(None).status_code == 401, path
            assert call("not-a-key").status_code == 403, path
        for scope, key in KEYS.items():
            status = call(key).status_code
            if needed is None or scope == needed:
                assert status not in (401, 403), (method, path, scope, status)
            else:
                assert status == 403, (method, path, scope, status)
        assert call(ALL).status_code not in (401, 403), path
    # segments: representative users only for the admin scope
    read = _client(service, KEYS["read"]).get("/segments").json()["segments"]
    admin = _client(service, KEYS["admin"]).get("/segments").json()["segments"]
    assert read and all(s["representatives"] == [] for s in read)
    assert all(s["representatives"] for s in admin)
    # public reads: per-user reads open, everything else still scoped
    public = _client(service, key=None, public_reads=True)
    assert public.get("/users/u0001/interests").status_code == 200
    assert public.get("/users/u0001/export").status_code == 401


def test_export_returns_exactly_what_was_ingested(served):
    service, data = served
    client = _client(service)
    items = service.catalog.item_ids[5:9]
    events = [{"user": "exp-user", "item": it, "timestamp": 1_700_000_000 + j, "event_type": "click",
               "event_id": f"exp-{j}"} for j, it in enumerate(items)]
    assert client.post("/events", json={"events": events}).status_code == 200
    body = client.get("/users/exp-user/export").json()
    fields = ("item", "timestamp", "event_type", "event_id")
    assert [{k: e[k] for k in fields} for e in body["events"]] == [{k: e[k] for k in fields} for e in events]
    assert body["n_events"] == 4 and body["batch_history"] == [] and body["known"]
    assert body["interests"] == client.get("/users/exp-user/interests").json()["nodes"]
    base_user = str(data.user_ids[2])
    exported = client.get(f"/users/{base_user}/export").json()
    assert exported["batch_history"] == [service.catalog.item_ids[i] for i in service.base_histories[base_user]]


def test_event_ids_make_retries_land_once(served):
    service, data = served
    client = _client(service)
    items = service.catalog.item_ids[10:13]
    batch = {"events": [{"user": "retry-user", "item": it, "timestamp": 1_700_000_000 + j, "event_id": f"r-{j}"}
                        for j, it in enumerate(items)]}
    first = client.post("/events", json=batch)
    n_stored = service.store.count_events()
    again = client.post("/events", json=batch)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert service.store.count_events() == n_stored
    assert client.get("/users/retry-user/interests").json()["n_events"] == 3
    dup = {"events": [{**batch["events"][0], "event_id": "r-new"}, {**batch["events"][0], "event_id": "r-new"}]}
    assert client.post("/events", json=dup).status_code == 200
    assert service.store.count_events() == n_stored + 1  # the same id twice in one batch: once


def test_eviction_keeps_answers_identical(served):
    from arborec.serve import InterestService

    service, data = served
    small = InterestService(service.scorer, service.catalog, service.store,
                            service.settings.model_copy(update={"user_cache_size": 4}),
                            base_histories=dict(service.base_histories), encoder=service.encoder)
    users = [str(u) for u in data.user_ids[:12]] + ["exp-user", "retry-user"]
    before = {u: (small.recommend(u, k=6), small.interests(u)) for u in users}
    n_known = sum(1 for u in users if before[u][1]["known"])
    assert small.n_users_live <= 4 and small.n_users_evicted >= n_known - 4 >= 8
    for u in users:  # every one was evicted and is rebuilt from the batch log and the store
        assert (small.recommend(u, k=6), small.interests(u)) == before[u]
        assert before[u] == (service.recommend(u, k=6), service.interests(u))  # as the unbounded service

    # segment sizes stay exact while users come and go from memory (and move between segments)
    from arborec.serve.schemas import EventIn

    n_before = small.segmentation.n_users
    tree = service.catalog.tree
    under = lambda label: [service.catalog.item_ids[i] for i in tree.members(1, tree.labels[0].index(label))]  # noqa: E731
    for label in ("Makeup", "Hair Care"):
        small.ingest([EventIn(user=f"evict-{u}", item=it, timestamp=1_700_000_000 + j)
                      for u in range(10) for j, it in enumerate(under(label)[u:u + 6])])
    assert small.segmentation.n_users == n_before + 10
    everyone = {u for u, h in small.base_histories.items() if len(h)} | set(small.store.user_ids())
    reported = [small.interests(u)["segment"] for u in sorted(everyone)]
    assert small.segmentation.sizes.tolist() == np.bincount(reported, minlength=small.n_segments).tolist()


def test_burst_gets_429_with_retry_after(served):
    service, _ = served
    client = _client(service, rate_limit="5/minute", anonymous_rate_limit="3/minute")
    statuses = [client.get("/users/u0001/interests") for _ in range(8)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429] * 3
    assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 60
    anonymous = TestClient(client.app)
    assert [anonymous.get("/segments").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert client.get("/health").status_code == 200  # not limited


def test_operator_metrics(served):
    service, _ = served
    client = _client(service)
    client.post("/events", json={"user": "m-user", "item": service.catalog.item_ids[0], "timestamp": 1_700_000_000})
    big = b'{"events": [' + b",".join([b'{"user": "u", "item": "i0000", "timestamp": 1700000000}'] * 30000) + b"]}"
    assert client.post("/events", content=big, headers={"Content-Type": "application/json"}).status_code == 413
    text = TestClient(client.app, headers={"X-API-Key": KEYS["metrics"]}).get("/metrics").text
    for name in ("arborec_event_apply_seconds_count", "arborec_store_commit_seconds_count",
                 "arborec_store_commit_errors_total", "arborec_http_requests_in_flight",
                 "process_resident_memory_bytes", "arborec_users_evicted"):
        assert name in text, name
    assert 'route="/events",status="413"' in text


def test_retention_folds_then_deletes_raw_events(served, tmp_path):
    from arborec.serve import InterestService, Store

    service, data = served
    settings = service.settings.model_copy(update={"retention_days": 1.0})
    url = f"sqlite:///{tmp_path / 'ret.db'}"
    make = lambda: InterestService(service.scorer, service.catalog, Store(url), settings,  # noqa: E731
                                   base_histories=dict(service.base_histories), encoder=service.encoder)
    live = make()
    from arborec.serve.schemas import EventIn

    base_user = str(data.user_ids[4])
    events = [EventIn(user=u, item=service.catalog.item_ids[20 + j], timestamp=1_700_000_000 + j)
              for j, u in enumerate(["ret-a", "ret-a", base_user, "ret-b"])]
    live.ingest(events[:3])
    live.ingest(events[3:])
    users = ["ret-a", "ret-b", base_user]
    before = {u: (live.recommend(u, k=5), live.interests(u)) for u in users}
    assert live.apply_retention() == {"users": 0, "events_removed": 0}  # nothing old yet
    assert live.store.count_events() == 4
    done = live.apply_retention(now_ms=int(time.time() * 1000) + 2 * 86_400_000)
    assert done == {"users": 3, "events_removed": 4} and live.store.count_events() == 0
    assert {u: (live.recommend(u, k=5), live.interests(u)) for u in users} == before
    restarted = make()  # rebuilt from the folded states alone
    assert {u: (restarted.recommend(u, k=5), restarted.interests(u)) for u in users} == before
    assert restarted.export("ret-a")["folded_events"] == 2 and restarted.export("ret-a")["events"] == []
    restarted.ingest([EventIn(user="ret-a", item=service.catalog.item_ids[30], timestamp=1_700_000_100)])
    assert restarted.interests("ret-a")["n_events"] == 3 and make().interests("ret-a")["n_events"] == 3


def _scan(paths, needles: list[str]) -> dict:
    found = {}
    for path in paths:
        blob = Path(path).read_bytes() if Path(path).exists() else b""
        hits = [n for n in needles if n.encode() in blob]
        if hits:
            found[str(path)] = hits
    return found


def test_forget_leaves_nothing_in_store_wal_or_later_bundle(tmp_path):
    """DELETE a batch-log user with live events and a live-only user; restart; scan the database, its WAL
    and a bundle fitted afterwards (histories kept): neither user's id nor event ids remain."""
    from arborec.serve import create_app, hash_api_key

    db = tmp_path / "forget.db"
    service, data = make_service(f"sqlite:///{db}", hash_api_key(ALL), n_users=150)
    client = TestClient(create_app(service), headers={"X-API-Key": ALL})
    base_user, other = str(data.user_ids[7]), str(data.user_ids[8])
    gone = [base_user, "zq-forget-me"]
    for n, user in enumerate(gone + [other]):
        events = [{"user": user, "item": service.catalog.item_ids[40 + j], "timestamp": 1_700_000_000 + j,
                   "event_id": f"evt-{user}-{j}"} for j in range(5)]
        assert client.post("/events", json={"events": events}).status_code == 200
    needles = gone + [f"evt-{u}-{j}" for u in gone for j in range(5)]
    assert _scan([db, f"{db}-wal"], needles)  # they are there before
    for user in gone:
        answer = client.delete(f"/users/{user}").json()
        assert answer["forgotten"] and answer["stored_events_deleted"] == 5
    assert answer["batch_events_dropped"] == 0 and client.get(f"/users/{user}/interests").json()["known"] is False
    seg = client.get("/segments").json()
    assert not {u for s in seg["segments"] for u in s["representatives"]} & set(gone)
    assert sum(s["n_users"] for s in seg["segments"]) == seg["n_users"]

    again, _ = make_service(f"sqlite:///{db}", hash_api_key(ALL), n_users=150)  # a restart
    client2 = TestClient(create_app(again), headers={"X-API-Key": ALL})
    for user in gone:
        body = client2.get(f"/users/{user}/export").json()
        assert body["known"] is False and body["events"] == [] and body["batch_history"] == []
        assert user not in again.base_histories
    assert client2.get(f"/users/{other}/interests").json()["known"]  # the others are kept
    again.store.close()
    service.store.close()
    assert not _scan([db, f"{db}-wal", f"{db}-journal"], needles), "a forgotten user is still in the store files"
    assert _scan([db, f"{db}-wal"], [other, f"evt-{other}-0"])  # (the scan does find what is there)

    # the next fit leaves them out, and the bundle it writes holds nothing of them, even with histories
    import torch

    from arborec.model import ArboRec, save_fitted
    from arborec.serve.forget import forget_in_bundle, without_forgotten
    from arborec.serve.store import Store
    from arborec.data import leave_one_out

    torch.set_num_threads(1)
    kept = without_forgotten(data, Store(f"sqlite:///{db}"))
    assert kept.n_users == data.n_users - 1 and base_user not in set(kept.user_ids)
    model = ArboRec(hidden_size=8, n_layers=1, max_len=8, max_epochs=1, eval_every=1, seed=0).fit(
        leave_one_out(kept), kept, vectors=synthetic_vectors(kept, HashingEncoder()))
    bundle = save_fitted(model, kept, tmp_path / "bundle", keep_histories=True)
    files = [p for p in bundle.iterdir() if p.is_file()]
    assert not _scan(files, gone)
    assert _scan(files, [other])  # histories were kept: the others are there
    assert forget_in_bundle(bundle, [other]) == 1 and not _scan(files, [other])  # arborec forget --bundle
    plain = save_fitted(model, kept, tmp_path / "plain")  # the default bundle carries no user histories
    assert not _scan([p for p in plain.iterdir() if p.is_file()], [other, str(kept.user_ids[0])])


def test_pseudonymised_store_holds_no_user_id(served, tmp_path):
    from arborec.serve import InterestService
    from arborec.serve.loading import store_for
    from arborec.serve.schemas import EventIn
    from pydantic import SecretStr

    service, data = served
    settings = service.settings.model_copy(update={"db_url": f"sqlite:///{tmp_path / 'p.db'}",
                                                   "pseudonym_key": SecretStr("a-server-secret-of-some-length")})
    make = lambda: InterestService(service.scorer, service.catalog, store_for(settings), settings,  # noqa: E731
                                   base_histories=dict(service.base_histories), encoder=service.encoder)
    pseudo = make()
    pseudo.ingest([EventIn(user="alice-zq", item=service.catalog.item_ids[j], timestamp=1_700_000_000 + j)
                   for j in range(3)])
    profile = pseudo.interests("alice-zq")
    assert pseudo.export("alice-zq")["pseudonymised"] and len(pseudo.export("alice-zq")["events"]) == 3
    assert all(u.startswith("p:") for u in pseudo.store.user_ids())
    pseudo.store.close()
    assert not _scan([tmp_path / "p.db", tmp_path / "p.db-wal"], ["alice-zq"])
    assert make().interests("alice-zq") == profile  # found again with the same secret


def test_replayed_batches_land_exactly_once_after_sigkill(tmp_path):
    """Batches with event ids streamed to a real server, SIGKILL mid-stream, restart, replay EVERY batch (sent or
    not, acknowledged or not): each event is stored once. The server ran without a configured key: it wrote one
    to a file readable by its owner only and never printed it."""
    import threading

    import httpx

    from arborec.data import make_synthetic, prepare
    from arborec.serve import Store

    data = prepare(make_synthetic())
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, synthetic_vectors(data, HashingEncoder()))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    key_file = tmp_path / "server.key"
    args = ["--data", "synthetic", "--model", "mostpop", "--vectors", str(vectors), "--db", db]
    env = {"ARBOREC_GENERATED_KEY_FILE": str(key_file)}
    port = free_port()
    server = start_server(args, port, env=env)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    auth = {"X-API-Key": key}
    batches = [[{"user": f"x{(b * 5 + j) % 9}", "item": str(data.item_ids[(b * 5 + j) % data.n_items]),
                 "timestamp": 1_700_000_000 + b * 5 + j, "event_id": f"b{b}-{j}"} for j in range(5)]
               for b in range(150)]
    acknowledged, stop = [], threading.Event()

    def stream():
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=5.0) as http:
            for b, batch in enumerate(batches):
                if stop.is_set():
                    return
                try:
                    if http.post("/events", json={"events": batch}).status_code == 200:
                        acknowledged.append(b)
                except httpx.HTTPError:
                    return

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    thread.join()
    log = server.stderr.read().decode()
    assert key not in log and str(key_file) in log
    assert 30 <= len(acknowledged) < len(batches)

    server = start_server(args, port, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=10.0) as http:
            for start in range(0, len(batches), 100):  # the client replays everything, 500 events a request
                replay = [e for batch in batches[start:start + 100] for e in batch]
                assert http.post("/events", json={"events": replay}).status_code == 200
            counts = {u: http.get(f"/users/{u}/interests").json()["n_events"] for u in (f"x{i}" for i in range(9))}
    finally:
        server.kill()
        server.wait()
    stored = Store(db).all_events()
    assert len(stored) == 5 * len(batches)  # exactly once
    assert sum(counts.values()) == 5 * len(batches)


def test_delete_removes_the_users_policy_slates_and_feedback(served):
    from sqlalchemy import text

    service, data = served
    client = _client(service)
    user = "slate-user"
    items = service.catalog.item_ids[10:14]
    events = [{"user": user, "item": it, "timestamp": 1_700_000_000 + j} for j, it in enumerate(items)]
    assert client.post("/events", json={"events": events}).status_code == 200
    slate = client.get(f"/users/{user}/recommendations", params={"policy": "slate", "k": 4}).json()
    assert slate["request_id"]
    fb = {"request_id": slate["request_id"], "item": slate["items"][0]["item"], "kind": "click",
          "timestamp": 1_700_000_100}
    assert client.post("/feedback", json=fb).status_code == 200
    assert len(client.get(f"/users/{user}/export").json()["slates"]) == 1
    assert client.delete(f"/users/{user}").json()["slates_deleted"] == 1
    with service.store.engine.connect() as conn:
        for table in ("policy_slates", "policy_feedback"):
            n = conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE user_id = :u"),
                             {"u": service.store.key(user)}).scalar_one()
            assert n == 0, table
