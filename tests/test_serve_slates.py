"""Policy slates in the service: ?policy=slate answers with propensities, POST /feedback, durable relearning."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faiss")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402

from serve_helpers import make_service  # noqa: E402

KEY = "test-key-0123456789abcdef0123456789abcdef"
AUTH = {"X-API-Key": KEY}
TS = 1_700_000_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from arborec.serve import create_app, hash_api_key

    db = tmp_path_factory.mktemp("slates") / "store.db"
    service, data = make_service(f"sqlite:///{db}", hash_api_key(KEY), n_users=120)
    return TestClient(create_app(service), headers=AUTH), service, data  # reads need the read scope too


def test_slate_answer_carries_propensities_and_a_request_id(served):
    client, service, data = served
    user = str(data.user_ids[3])
    history = {service.catalog.item_ids[i] for i in service.base_histories[user]}
    body = client.get(f"/users/{user}/recommendations", params={"k": 6, "policy": "slate"}).json()
    assert body["policy"] == "slate" and body["request_id"] and body["policy_version"].startswith("slate-ts")
    items = body["items"]
    assert len(items) == 6 and len({r["item"] for r in items}) == 6
    assert [r["position"] for r in items] == list(range(6))
    for r in items:
        assert r["item"] not in history
        assert 0 < r["propensity"] <= r["inclusion"] <= 1
    plain = client.get(f"/users/{user}/recommendations", params={"k": 6}).json()
    assert plain["policy"] == "model" and plain["request_id"] is None
    assert all(r["propensity"] is None for r in plain["items"])
    assert client.get(f"/users/{user}/recommendations", params={"policy": "bandit"}).status_code == 422
    logged = client.app.state.slates.logged(user)
    assert logged[-1]["request_id"] == body["request_id"]
    assert logged[-1]["items"] == [r["item"] for r in items]
    np.testing.assert_allclose(logged[-1]["propensities"], [r["propensity"] for r in items], atol=1e-6)


def test_feedback_is_checked_learned_and_moves_the_users_state(served):
    client, service, data = served
    user = str(data.user_ids[5])
    body = client.get(f"/users/{user}/recommendations", params={"k": 5, "policy": "slate"}).json()
    rid, first, second = body["request_id"], body["items"][0]["item"], body["items"][1]["item"]
    click = {"request_id": rid, "item": first, "kind": "click", "timestamp": TS}
    assert TestClient(client.app).post("/feedback", json=click).status_code == 401  # the write key
    bad = client.post("/feedback", json={**click, "request_id": "nope"}, headers=AUTH)
    assert bad.status_code == 404 and "unknown request_id" in bad.json()["detail"]
    not_shown = next(i for i in service.catalog.item_ids if i not in {r["item"] for r in body["items"]})
    assert client.post("/feedback", json={**click, "item": not_shown}, headers=AUTH).status_code == 404
    n_before = service.user(user).n_events
    policy = client.app.state.slates.policy
    slots_before = policy.slots_
    ok = client.post("/feedback", headers=AUTH, json={"feedback": [
        click, {"request_id": rid, "item": second, "kind": "skip", "timestamp": TS}]})
    assert ok.status_code == 200 and ok.json() == {"accepted": 2, "duplicates": 0, "events": 1}
    assert service.user(user).n_events == n_before + 1  # the click is an event: the state moved at once
    assert policy.slots_ == slots_before + 2  # learned from both
    clicks, shows = policy.counts_[user]
    assert clicks.sum() == pytest.approx(1.0) and shows.sum() == pytest.approx(2.0)
    again = client.post("/feedback", json=click, headers=AUTH).json()
    assert again == {"accepted": 0, "duplicates": 1, "events": 0}  # idempotent
    assert service.user(user).n_events == n_before + 1


def test_acknowledged_feedback_is_relearned_after_a_restart(served):
    from arborec.serve.slates import SlateServing

    client, service, data = served
    user = str(data.user_ids[7])
    body = client.get(f"/users/{user}/recommendations", params={"k": 4, "policy": "slate"}).json()
    rows = [{"request_id": body["request_id"], "item": r["item"], "kind": "skip", "timestamp": TS}
            for r in body["items"]]
    assert client.post("/feedback", json={"feedback": rows}, headers=AUTH).json()["accepted"] == 4
    live = client.app.state.slates.policy
    restarted = SlateServing(service).policy  # a new process: reads the store only
    assert set(restarted.counts_) == set(live.counts_)
    for u, (c, s) in live.counts_.items():
        np.testing.assert_allclose(restarted.counts_[u][0], c)
        np.testing.assert_allclose(restarted.counts_[u][1], s)
