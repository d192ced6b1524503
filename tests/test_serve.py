"""The service API on synthetic data: contract, real-time updates, auth, bad input, cold start, new items,
user segments, offline docs, restart from the store, durability under SIGKILL, and a schema fuzz."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faiss")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402

from serve_helpers import HashingEncoder, free_port, make_service, start_server, synthetic_vectors  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("ARBOREC_FUZZ_EXAMPLES", "15"))  # per operation; raise for a longer fuzz
KEY = "test-key-0123456789abcdef0123456789abcdef"
AUTH = {"X-API-Key": KEY}  # a key with every scope (the served client sends it unless told otherwise)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(client, service, data) over a fresh SQLite store."""
    from arborec.serve import create_app, hash_api_key

    db = tmp_path_factory.mktemp("serve") / "store.db"
    service, data = make_service(f"sqlite:///{db}", hash_api_key(KEY))
    return TestClient(create_app(service), headers=AUTH), service, data


def _items_under(service, level: int, label: str) -> list[str]:
    tree = service.catalog.tree
    node = tree.labels[level - 1].index(label)
    return [service.catalog.item_ids[i] for i in tree.members(level, node)]


def test_health_and_schema(served):
    client, service, _ = served
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["store"] == "ok" and health["n_items"] == service.catalog.n_items
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/events", "/users/{user_id}/recommendations", "/users/{user_id}/interests", "/items",
                  "/segments", "/health", "/metrics"):
        assert route in paths


def test_docs_pages_load_their_assets_from_the_service(served):
    """/docs (Swagger UI) and /redoc work offline: every script, style and icon they name is served here."""
    client, _, _ = served
    for page, kinds in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        response = client.get(page)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        urls = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert "http" not in response.text.replace("http-equiv", "")  # no CDN, no web font
        assert all(u.startswith("/") for u in urls) and {u.rsplit("/", 1)[-1] for u in urls} >= set(kinds)
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > (100_000 if url.endswith((".js", ".css")) else 1_000), url
    assert "SwaggerUIBundle" in client.get("/static-docs/swagger-ui-bundle.js").text
    assert client.get("/redoc").headers["content-security-policy"] == "img-src 'self' data:"  # ReDoc's CDN logo
    assert client.get("/docs").text.count("/openapi.json") == 1


def test_recommendations_of_a_known_user(served):
    client, service, data = served
    user = str(data.user_ids[3])
    history = {service.catalog.item_ids[i] for i in service.base_histories[user]}
    body = client.get(f"/users/{user}/recommendations", params={"k": 7}).json()
    assert body["known"] and body["strategy"] == "model" and len(body["items"]) == 7
    scores = [r["score"] for r in body["items"]]
    assert scores == sorted(scores, reverse=True)
    for rec in body["items"]:
        assert rec["item"] not in history  # history filtered
        assert rec["reason"] and len(rec["path"]) == service.catalog.tree.n_levels
        if rec["interest"] is not None:  # the interest served is a node on the item's own path
            assert rec["path"][:len(rec["interest"]["path"])] == rec["interest"]["path"]
            # and "because" names a history item under that same interest
            because = next(i for i in service.base_histories[user] if service.catalog.titles[i] == rec["because"])
            depth = len(rec["interest"]["path"])
            assert service.catalog.path_labels(because)[:depth] == rec["interest"]["path"]


def test_events_update_interests_and_recommendations_at_once(served):
    client, service, data = served
    # a user whose whole history is outside Fragrance, then ten Fragrance events
    frag_node = service.catalog.tree.labels[0].index("Fragrance")
    user = next(str(u) for u, items in service.base_histories.items()
                if not np.any(service.catalog.tree.codes[items, 0] == frag_node))
    before = client.get(f"/users/{user}/interests").json()
    recs_before = client.get(f"/users/{user}/recommendations", params={"k": 5}).json()["items"]
    assert all(r["path"][0] != "Fragrance" for r in recs_before)
    assert all(n["label"] != "Fragrance" for n in before["nodes"] if n["level"] == 1)
    new_items = _items_under(service, 2, "Men's")[:10]
    events = [{"user": user, "item": it, "timestamp": 1_700_000_000 + j, "event_type": "view"}
              for j, it in enumerate(new_items)]
    ack = client.post("/events", json={"events": events}, headers=AUTH)
    assert ack.status_code == 200 and ack.json() == {"accepted": 10, "users": [user]}
    after = client.get(f"/users/{user}/interests").json()
    assert after["n_events"] == before["n_events"] + 10
    top = {n["label"]: n for n in after["nodes"] if n["level"] == 1}
    assert top["Fragrance"]["short"] == pytest.approx(1.0)  # the recent window is all Fragrance
    assert 0 < top["Fragrance"]["long"] < 1.0
    recs = client.get(f"/users/{user}/recommendations", params={"k": 5}).json()["items"]
    fragrance = [r for r in recs if r["path"][0] == "Fragrance"]
    assert len(fragrance) >= 2  # recommendations follow the new interest at once...
    # ...and say so, worded from the numbers: the finest node the new events share, and how many of them
    reasons = [r["reason"] for r in fragrance]
    assert all("in Fragrance > Men's" in r for r in reasons), reasons
    assert any(r.startswith("a recent interest: ") and "of your last 10 events" in r for r in reasons), reasons
    assert not set(new_items) & {r["item"] for r in recs}  # and skip what was just seen


def test_writes_reads_and_metrics_need_the_key(served):
    client, service, data = served
    anonymous = TestClient(client.app)
    event = {"user": "intruder", "item": service.catalog.item_ids[0], "timestamp": 1_700_000_000}
    n_before = service.store.count_events()
    assert anonymous.post("/events", json=event).status_code == 401
    assert anonymous.post("/events", json=event, headers={"X-API-Key": "wrong"}).status_code == 403
    assert anonymous.post("/events", json=event, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert anonymous.post("/items", json={"items": [{"item": "x1", "title": "x"}]}).status_code == 401
    assert anonymous.get("/metrics").status_code == 401
    assert service.store.count_events() == n_before  # nothing was written
    assert anonymous.get("/users/intruder/recommendations").status_code == 401  # per-user reads need a key
    metrics = anonymous.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert metrics.status_code == 200
    assert 'route="/events",status="401"' in metrics.text and "arborec_http_request_seconds_bucket" in metrics.text


@pytest.mark.parametrize("body, status, message", [
    ({"user": "u1", "item": "no-such-item", "timestamp": 1_700_000_000}, 422, "no-such-item"),
    ({"user": "bad user/id", "item": "i0000", "timestamp": 1_700_000_000}, 422, "pattern"),
    ({"user": "u1", "item": "i0000", "timestamp": -5}, 422, "greater than"),
    ({"user": "u1", "item": "i0000", "timestamp": 1_700_000_000, "event_type": "teleport"}, 422, "view"),
    ({"events": []}, 422, "at least 1"),
    ({"events": [{"user": "u1", "item": "i0000", "timestamp": 1_700_000_000}] * 1001}, 422, "at most 1000"),
])
def test_bad_events_get_a_clear_4xx(served, body, status, message):
    client, service, _ = served
    n_before = service.store.count_events()
    response = client.post("/events", json=body, headers=AUTH)
    assert response.status_code == status
    assert message in response.text and "Traceback" not in response.text
    assert service.store.count_events() == n_before


def test_limits_and_malformed_requests(served):
    client, service, _ = served
    big = b'{"events": [' + b",".join([b'{"user": "u", "item": "i0000", "timestamp": 1700000000}'] * 30000) + b"]}"
    response = client.post("/events", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    response = client.post("/events", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert client.get("/users/u0001/recommendations", params={"k": 0}).status_code == 422
    assert client.get("/users/u0001/recommendations", params={"k": 10_000}).status_code == 422
    n_segments = len(client.get("/segments").json()["segments"])
    assert n_segments == service.n_segments >= 4
    response = client.get("/users/new/recommendations", params={"segment": n_segments})
    assert response.status_code == 422 and "GET /segments" in response.json()["detail"]


def test_cold_start_answers(served):
    client, service, _ = served
    plain = client.get("/users/never-seen/recommendations", params={"k": 8}).json()
    assert not plain["known"] and plain["strategy"] == "popular-in-segments"
    assert len({r["path"][0] for r in plain["items"]}) == service.catalog.tree.level_sizes[0]  # every segment
    seg = client.get("/users/never-seen/recommendations", params={"k": 5, "segment": 2}).json()
    segment = client.get("/segments").json()["segments"][2]
    assert seg["strategy"] == "popular-in-segment" and seg["segment"] == 2
    assert [r["item"] for r in seg["items"]] == segment["top_items"]  # the items its users used most
    assert all(segment["label"] in r["reason"] for r in seg["items"])
    counts = service.segmentation.item_counts[2]
    scores = [r["score"] for r in seg["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == counts.max() > 0
    stated = client.get("/users/never-seen/recommendations", params={"k": 5, "interest": "mascara"}).json()
    assert stated["strategy"] == "stated-interest"
    assert all(r["path"][-1] == "Mascara" for r in stated["items"])
    assert client.get("/users/never-seen/interests").json() == {
        "user": "never-seen", "known": False, "n_events": 0, "short_window": service.settings.short_window,
        "segment": None, "segment_label": None, "levels": ["level 1", "level 2", "level 3"], "nodes": []}


def test_new_items_are_placed_and_recommendable_at_once(served, tmp_path):
    client, service, data = served
    new = {"item": "new-lipstick-1", "title": "Avalon Bold Lipstick No. 99", "brand": "Avalon",
           "category_path": ["Makeup", "Lips", "Lipstick"]}
    odd = {"item": "new-oil-1", "title": "Verde Pure Body Oil Deluxe", "category_path": []}  # placed by its text
    response = client.post("/items", json={"items": [new, odd]}, headers=AUTH)
    assert response.status_code == 200, response.text
    placed = {it["item"]: it["path"] for it in response.json()["items"]}
    assert placed == {"new-lipstick-1": ["Makeup", "Lips", "Lipstick"], "new-oil-1": ["Skin Care", "Body", "Body Oil"]}
    assert client.post("/items", json={"items": [new]}, headers=AUTH).status_code == 409
    # a user who has just viewed other lipsticks gets the new one among the first recommendations
    lipsticks = _items_under(service, 3, "Lipstick")
    events = [{"user": "lip-fan", "item": it, "timestamp": 1_700_000_000 + j} for j, it in enumerate(lipsticks[:6])]
    assert client.post("/events", json={"events": events}, headers=AUTH).status_code == 200
    recs = client.get("/users/lip-fan/recommendations", params={"k": 10}).json()["items"]
    assert "new-lipstick-1" in [r["item"] for r in recs]
    # and events on the new item are accepted and counted under its node
    ok = client.post("/events", json={"user": "lip-fan", "item": "new-lipstick-1", "timestamp": 1_700_000_100},
                     headers=AUTH)
    assert ok.status_code == 200
    nodes = client.get("/users/lip-fan/interests").json()["nodes"]
    assert {n["label"]: n["long"] for n in nodes if n["level"] == 3} == {"Lipstick": 1.0}


def test_state_is_rebuilt_from_the_store(served):
    """A second service over the same store (a restart) has the added items and every user's events."""
    client, service, data = served
    from arborec.serve import create_app

    client.post("/events", json={"user": "restart-me", "item": "i0000", "timestamp": 1_700_000_000}, headers=AUTH)
    before = {u: client.get(f"/users/{u}/interests").json() for u in ("restart-me", "lip-fan", str(data.user_ids[3]))}
    again, _ = make_service(service.store.url, service.settings.api_key_hash)
    assert again.catalog.n_items == service.catalog.n_items  # items added through the API came back
    client2 = TestClient(create_app(again), headers=AUTH)
    for user, profile in before.items():
        assert client2.get(f"/users/{user}/interests").json() == profile


def _users_with_events(service) -> set[str]:
    return {u for u, h in service.base_histories.items() if len(h)} | set(service.store.user_ids())


def test_segments_count_every_user_once(served):
    client, service, data = served
    body = client.get("/segments").json()
    segments = body["segments"]
    users = _users_with_events(service)
    seg = service.segmentation.segmenter
    assert body["n_segments"] == len(segments) == seg.n_segments_ and body["method"] == "kmeans"
    assert body["fitted_on"] == len(service.base_histories) and body["levels"] == [1]
    assert -1 <= body["silhouette"] <= 1
    assert [s["label"] for s in segments] == seg.names_
    assert sum(s["n_users"] for s in segments) == body["n_users"] == len(users)
    # the sizes are the users' reported segments, counted
    reported = [client.get(f"/users/{u}/interests").json()["segment"] for u in sorted(users)]
    assert [s["n_users"] for s in segments] == np.bincount(reported, minlength=len(segments)).tolist()
    for s in segments:
        assert s["share"] == pytest.approx(s["n_users"] / len(users), abs=1e-4)
        assert 1 <= len(s["representatives"]) <= 5 and s["interests"] and len(s["top_items"]) == 5
        for user in s["representatives"]:  # users of the batch log, nearest the segment's centre
            assert user in service.base_histories
        assert s["interests"][0]["level"] == 1 and 0 < s["interests"][0]["share"] <= 1


def test_a_users_segment_is_the_segmenters_prediction_on_their_profile(served):
    """The reported segment = Segmenter.predict(profile); the profile = ProfileBuilder's over the history."""
    client, service, data = served
    from arborec.data import Histories
    from arborec.profiles import ProfileBuilder, profile_features

    seg = service.segmentation.segmenter
    tree = service.catalog.tree
    builder = ProfileBuilder(tree, half_life=float("inf"), short_window=service.settings.short_window)
    for user in map(str, data.user_ids[10:40]):
        history = service.base_histories[user]
        if user in service.store.user_ids():
            continue
        expected = int(seg.predict(service.profile(user))[0])
        assert client.get(f"/users/{user}/interests").json()["segment"] == expected
        assert client.get(f"/users/{user}/recommendations", params={"k": 3}).json()["segment"] == expected
        counted = builder.fit(Histories(np.array([0, len(history)]), history.astype(np.int32)))
        counted = counted.transform(Histories(np.array([0, len(history)]), history.astype(np.int32)))
        np.testing.assert_allclose(profile_features(counted), profile_features(service.profile(user)), atol=1e-12)
        assert int(seg.predict(counted)[0]) == expected

    # a new user: assigned on their first events, moved as they change, counted once
    n_before = client.get("/segments").json()["n_users"]
    makeup = _items_under(service, 1, "Makeup")
    hair = _items_under(service, 1, "Hair Care")
    seen = []
    for batch in (makeup[:4], hair[:12]):
        events = [{"user": "seg-new", "item": it, "timestamp": 1_700_000_000 + j} for j, it in enumerate(batch)]
        assert client.post("/events", json={"events": events}, headers=AUTH).status_code == 200
        got = client.get("/users/seg-new/interests").json()["segment"]
        assert got == int(seg.predict(service.profile("seg-new"))[0]) == service.user("seg-new").segment
        assert got == client.get("/users/seg-new/recommendations").json()["segment"]
        seen.append(got)
        body = client.get("/segments").json()
        assert body["n_users"] == sum(s["n_users"] for s in body["segments"]) == n_before + 1
    assert "Hair Care" in body["segments"][seen[-1]]["label"]

    # a batch of several users: each assigned as if alone
    batch = [{"user": f"seg-batch-{j % 3}", "item": it, "timestamp": 1_700_000_000 + j}
             for j, it in enumerate(makeup[5:8] + hair[12:15] + _items_under(service, 1, "Fragrance")[:3])]
    assert client.post("/events", json={"events": batch}, headers=AUTH).status_code == 200
    for user in ("seg-batch-0", "seg-batch-1", "seg-batch-2"):
        assert service.user(user).segment == int(seg.predict(service.profile(user))[0])


def test_segments_are_deterministic(served, tmp_path):
    """The same batch log and seed give the same segments and assignments; prediction repeats exactly."""
    client, service, data = served
    from arborec.serve import hash_api_key

    again, _ = make_service(f"sqlite:///{tmp_path / 'again.db'}", hash_api_key(KEY))
    a, b = service.segmentation.segmenter, again.segmentation.segmenter
    assert a.names_ == b.names_ and a.representatives_ == b.representatives_
    np.testing.assert_array_equal(a.centers_, b.centers_)
    live = set(service.store.user_ids())
    for user in (u for u in service.base_histories if u not in live):
        assert service.segmentation.segment_of(user) == again.segmentation.segment_of(user)
        assert service.user(user).segment == again.user(user).segment
    user = str(data.user_ids[7])
    assert len({int(a.predict(service.profile(user))[0]) for _ in range(5)}) == 1


def test_too_few_users_for_segments(served, tmp_path):
    """A service with no batch log starts without segments: none listed, ?segment= refused with a 422."""
    client, service, _ = served
    from arborec.serve import InterestService, Store, create_app

    empty = InterestService(service.scorer, service.catalog, Store(f"sqlite:///{tmp_path / 'e.db'}"), service.settings,
                            encoder=service.encoder)
    bare = TestClient(create_app(empty), headers=AUTH)
    assert bare.get("/segments").json() == {"n_users": 0, "n_segments": 0, "method": "kmeans", "fitted_on": 0,
                                            "silhouette": None, "levels": [], "segments": []}
    response = bare.get("/users/x/recommendations", params={"segment": 0})
    assert response.status_code == 422 and "0 segments" in response.json()["detail"]
    item = service.catalog.item_ids[0]
    assert bare.post("/events", json={"user": "solo", "item": item, "timestamp": 1_700_000_000},
                     headers=AUTH).status_code == 200
    assert bare.get("/users/solo/interests").json()["segment"] is None


def test_diverse_lists_spread_over_interests(served):
    client, service, data = served
    user = str(data.user_ids[5])
    plain = client.get(f"/users/{user}/recommendations", params={"k": 8}).json()["items"]
    diverse = client.get(f"/users/{user}/recommendations", params={"k": 8, "diverse": True}).json()["items"]
    assert len({r["path"][0] for r in diverse}) >= max(2, len({r["path"][0] for r in plain}))


def test_item_index_exact_and_hnsw_agree():
    from arborec.serve import ItemIndex
    from arborec.serve.retrieval import top_k_dense

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    query = rng.normal(size=32).astype(np.float32)
    flat, hnsw = ItemIndex(vectors), ItemIndex(vectors, hnsw_threshold=1000)
    assert (flat.kind_, hnsw.kind_) == ("flat", "hnsw")
    exclude = np.argsort(-(vectors @ query))[:5]  # the five best are "already seen"
    ids, scores = flat.search(query, 10, exclude=exclude)
    dense_ids, _ = top_k_dense(vectors @ query, 10, exclude=exclude)
    assert np.array_equal(ids, dense_ids) and not set(ids) & set(exclude)
    approx, _ = hnsw.search(query, 10, exclude=exclude)
    assert len(set(approx) & set(ids)) >= 9


def test_sequential_models_retrieve_through_faiss(tmp_path):
    """With SASRec the service searches item embeddings with faiss; the ranking equals the dense scores."""
    from arborec.serve import hash_api_key

    service, data = make_service(f"sqlite:///{tmp_path / 's.db'}", hash_api_key(KEY), n_users=150, model="sasrec",
                                 hidden_size=16, n_layers=1, max_epochs=2, eval_every=2)
    assert service.health()["retrieval"] == "faiss-flat"
    user = str(data.user_ids[0])
    state = service.user(user).state
    got = [r["item"] for r in service.recommend(user, k=5, explain=False)["items"]]
    from arborec.serve.retrieval import top_k_dense

    dense, _ = top_k_dense(service.scorer.scores(state), 5, exclude=service.scorer.recent(state))
    assert got == [service.catalog.item_ids[i] for i in dense]


def test_acknowledged_events_survive_sigkill(tmp_path):
    """Stream events to a real server process, SIGKILL it mid-stream, restart: every acknowledged event is there."""
    import httpx

    from arborec.data import make_synthetic, prepare
    from arborec.serve import Store, hash_api_key

    data = prepare(make_synthetic())
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, synthetic_vectors(data, HashingEncoder()))
    db = f"sqlite:///{tmp_path / 'store.db'}"
    args = ["--data", "synthetic", "--vectors", str(vectors), "--db", db, "--api-key-hash", hash_api_key(KEY)]
    port = free_port()
    server = start_server(args, port)
    acknowledged, stop = [], threading.Event()

    def stream():
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=5.0) as http:
            for j in range(100_000):
                if stop.is_set():
                    return
                event = {"user": f"d{j % 7}", "item": str(data.item_ids[j % data.n_items]), "timestamp": 1_700_000_000 + j}
                try:
                    if http.post("/events", json=event).status_code == 200:
                        acknowledged.append(event)
                except httpx.HTTPError:
                    return  # the server is gone

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    thread.join()
    assert len(acknowledged) >= 150

    stored = {(u, i, t) for u, i, t, _ in Store(db).all_events()}
    assert {(e["user"], e["item"], e["timestamp"]) for e in acknowledged} <= stored
    server = start_server(args, port)
    try:  # and the restarted service rebuilt the users' state from them
        counts = {f"d{u}": sum(1 for e in acknowledged if e["user"] == f"d{u}") for u in range(7)}
        for user, n in counts.items():
            got = httpx.get(f"http://127.0.0.1:{port}/users/{user}/interests", headers=AUTH).json()["n_events"]
            assert n <= got <= n + 1  # at most one more: an event written but killed before its answer
    finally:
        server.kill()
        server.wait()


def test_schema_fuzz_finds_no_server_error(tmp_path):
    """Property-based requests generated from the OpenAPI schema (schemathesis), each sent with every key
    (all scopes, each single scope, none): never a 5xx; without a key, only /health and /segments answer."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    from arborec.serve import Scope, create_app, hash_api_key

    service, _ = make_service(f"sqlite:///{tmp_path / 'fuzz.db'}", hash_api_key(KEY), n_users=100)
    scoped = {scope: f"fuzz-{scope.value}-key-0123456789abcdef" for scope in Scope}
    app_settings = service.settings.model_copy(update={"api_keys": {s: [hash_api_key(k)] for s, k in scoped.items()}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service, app_settings))
    failures = []
    open_routes = {"/health", "/segments"}

    def check(op, case):
        bare = {k: v for k, v in (case.headers or {}).items() if k not in ("X-API-Key", "Authorization")}
        for key in (KEY, *scoped.values(), None):
            case.headers = {**bare, "X-API-Key": key} if key else dict(bare)
            response = case.call()
            if response.status_code >= 500:
                failures.append((op.label, key, response.status_code, response.text[:200]))
            if key is None and op.path not in open_routes:  # nothing answers without a key
                assert response.status_code == 401, (op.label, response.status_code)

    def fuzz(op):
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            check(op, case)
        return run

    for operation in schema.get_all_operations():
        fuzz(operation.ok())()
    assert not failures, json.dumps(failures[:5], indent=1)


def test_arborec_bundle_is_served_through_its_state_api(tmp_path):
    """A saved arborec bundle: the rebuilt per-user state scores like the model on the full history,
    interests are the model's level distributions, events move the state, new items are scorable."""
    pytest.importorskip("arborec.model")
    import torch

    from arborec.data import Histories, leave_one_out, make_synthetic, prepare
    from arborec.model import ArboRec, load_bundle, save_bundle
    from arborec.serve import ServeSettings, hash_api_key, service_from_model
    from arborec.serve.schemas import EventIn, ItemIn

    torch.set_num_threads(1)
    data = prepare(make_synthetic(n_users=200, seed=1))
    split = leave_one_out(data)
    encoder = HashingEncoder()
    model = ArboRec(hidden_size=16, n_layers=1, max_len=12, max_epochs=2, eval_every=1, seed=0).fit(
        split, data, vectors=synthetic_vectors(data, encoder))
    save_bundle(model, tmp_path / "bundle", item_ids=data.item_ids)
    settings = ServeSettings(db_url=f"sqlite:///{tmp_path / 'b.db'}", api_key_hash=hash_api_key(KEY))
    service = service_from_model(load_bundle(tmp_path / "bundle"), settings, data=data, encoder=encoder)
    assert service.health()["scorer"] == "arborec"

    user = str(data.user_ids[0])
    history = service.base_histories[user]
    expected = model.score(np.zeros(1), Histories(np.array([0, len(history)]), history.astype(np.int32)))[0]
    np.testing.assert_allclose(service.scorer.scores(service.user(user).state), expected, rtol=1e-4, atol=1e-4)
    recs = service.recommend(user, k=5)
    assert recs["strategy"] == "model" and len(recs["items"]) == 5
    assert not {r["item"] for r in recs["items"]} & {data.item_ids[i] for i in history[-12:]}
    profile = service.interests(user)
    level1 = [n["long"] for n in profile["nodes"] if n["level"] == 1]
    assert 0.5 < sum(level1) <= 1.0 + 1e-6  # probabilities (nodes under min_share left out)

    service.ingest([EventIn(user=user, item=recs["items"][0]["item"], timestamp=1_700_000_000)])
    assert service.user(user).n_events == len(history) + 1
    assert recs["items"][0]["item"] not in {r["item"] for r in service.recommend(user, k=5)["items"]}
    added = service.add_items([ItemIn(item="arb-new", title="Pico Bold Mascara No. 42",
                                      category_path=["Makeup", "Eyes", "Mascara"])])
    assert added[0]["path"][-1] == "Mascara"
    assert len(service.scorer.scores(service.user(user).state)) == service.catalog.n_items

    # what `arborec serve --bundle PATH` builds: the bundle alone (ids as titles), another encoder refused
    from arborec.diagnostics import ConfigError
    from arborec.serve import load_service

    bare = load_service(settings.model_copy(update={"db_url": f"sqlite:///{tmp_path / 'bare.db'}"}),
                        bundle=str(tmp_path / "bundle"))
    bare.encoder = HashingEncoder(dim=32)
    assert bare.name == "arborec" and bare.catalog.titles[0] == str(data.item_ids[0])
    with pytest.raises(ConfigError, match="dimensional"):
        bare.add_items([ItemIn(item="x-1", title="x")])


def test_serving_keeps_full_garbage_collections_out_of_requests():
    """What exists once the service is loaded is frozen for the cyclic collector, and young passes are rarer
    (their full passes paused reads for 40-180 ms: benchmarks/results/serve_memory_1000000.md)."""
    import subprocess
    import sys

    code = ("import gc, json; from arborec.serve.loading import quiet_garbage_collector as quiet; "
            "before = gc.get_freeze_count(); quiet(); print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, threshold = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == 0 and after > 10_000  # the loaded modules' objects are frozen
    assert threshold[0] > 700  # young collections after more allocations than Python's default


def test_event_application_gives_way_to_reads_in_flight():
    """An ingest's pause waits while a read is in flight (until it ends, at most max_wait), not otherwise."""
    from arborec.serve.reads_first import ReadsFirst

    reads = ReadsFirst(max_wait=5.0, budget=5.0)
    t0 = time.perf_counter()
    reads.pause()
    assert time.perf_counter() - t0 < 0.05 and reads.pauses == 0  # no read: no wait
    started = threading.Event()

    def read(seconds):
        with reads.reading():
            started.set()
            time.sleep(seconds)
    reader = threading.Thread(target=read, args=(0.3,))
    reader.start()
    started.wait()
    t0 = time.perf_counter()
    reads.pause()
    waited = time.perf_counter() - t0
    reader.join()
    assert 0.15 < waited < 4.0 and reads.pauses == 1 and reads.readers == 0  # waited for the read, not max_wait

    reads = ReadsFirst(max_wait=0.1, budget=0.25)  # a read that never ends slows the ingest, never stops it
    started.clear()
    reader = threading.Thread(target=read, args=(2.5,))
    reader.start()
    started.wait()
    t0 = time.perf_counter()
    reads.pause()
    assert time.perf_counter() - t0 < 1.0  # one pause: max_wait at most
    with reads.applying():  # one batch: all its pauses together wait budget at most
        t0 = time.perf_counter()
        for _ in range(20):
            reads.pause()
        assert time.perf_counter() - t0 < 1.5
    reader.join()


def test_reads_are_announced_while_they_run_and_ingest_pauses_for_them(served, monkeypatch):
    client, service, data = served
    seen = []
    real = service.recommend
    monkeypatch.setattr(service, "recommend", lambda *a, **kw: (seen.append(service.reads.readers), real(*a, **kw))[1])
    user = str(data.user_ids[0])
    assert client.get(f"/users/{user}/recommendations").status_code == 200
    assert seen == [1] and service.reads.readers == 0
    calls = []
    monkeypatch.setattr(service.reads, "pause", lambda: calls.append(1))
    item = service.catalog.item_ids[0]
    events = [{"user": f"pause-{i}", "item": item, "timestamp": 1_700_000_000, "event_type": "view"} for i in range(3)]
    assert client.post("/events", json={"events": events}).status_code == 200
    assert len(calls) >= 3  # at least once per user of the batch


def test_store_reports_the_commit_latency_of_a_batch_written_in_chunks(served, monkeypatch):
    """add_events writes its rows in chunks (the ingest may pause between them); on_commit still gets the
    seconds the transaction took."""
    _, service, _ = served
    seen = []
    monkeypatch.setattr(service.store, "on_commit", lambda seconds, ok: seen.append((seconds, ok)))
    item = service.catalog.item_ids[0]
    from arborec.serve import schemas
    batch = schemas.EventBatch(events=[{"user": f"chunk-{i}", "item": item, "timestamp": 1_700_000_000,
                                        "event_type": "view"} for i in range(250)])
    service.ingest(batch.events)
    assert len(seen) == 1 and seen[0][1] and 0.0 <= seen[0][0] < 5.0
