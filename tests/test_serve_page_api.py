"""The page's two look-ups (a user's recent items, item search) and the one definition of long/short term and
of the segments that the service, the report and the demo share."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faiss")

from fastapi.testclient import TestClient  # noqa: E402

from serve_helpers import make_service  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from arborec.serve import create_app, hash_api_key

    service, data = make_service(f"sqlite:///{tmp_path_factory.mktemp('page') / 's.db'}", hash_api_key("k" * 32))
    return TestClient(create_app(service), headers={"X-API-Key": "k" * 32}), service, data  # reads need a key


def test_recent_items_are_the_users_last_items_newest_first(served):
    client, service, data = served
    user = next(iter(service.base_histories))
    history = service.base_histories[user]
    body = client.get(f"/users/{user}/recent", params={"limit": 3}).json()
    assert body["n_events"] == len(history)
    assert [r["item"] for r in body["items"]] == [service.catalog.item_ids[i] for i in history[::-1][:3]]
    assert body["items"][0]["title"] == service.catalog.titles[history[-1]] and body["items"][0]["path"]
    assert client.get("/users/nobody-yet/recent").json() == {"user": "nobody-yet", "n_events": 0, "items": []}
    assert client.get(f"/users/{user}/recent", params={"limit": 0}).status_code == 422


def test_item_search_finds_titles_and_ids_case_insensitively(served):
    client, service, _ = served
    title = service.catalog.titles[7]
    word = title.split()[-3].upper()  # e.g. "LIPSTICK" from "Norra Gentle Lipstick No. 6"
    found = client.get("/items/search", params={"q": word, "limit": 50}).json()["items"]
    assert found and all(word.casefold() in r["title"].casefold() for r in found)
    assert service.catalog.item_ids[7] in {r["item"] for r in found} or len(found) == 50
    counts = [service.catalog.counts[service.catalog.index_of[r["item"]]] for r in found]
    assert counts == sorted(counts, reverse=True)  # most used first
    by_id = client.get("/items/search", params={"q": service.catalog.item_ids[3]}).json()["items"]
    assert by_id[0]["item"] == service.catalog.item_ids[3]
    assert client.get("/items/search", params={"q": "no such thing at all"}).json()["items"] == []
    assert client.get("/items/search", params={"q": ""}).status_code == 422


def test_service_and_profiles_share_one_definition_of_long_and_short_term(served):
    from arborec.data import Histories
    from arborec.profiles import HALF_LIFE, SHORT_WINDOW, ProfileBuilder

    client, service, _ = served
    assert service.settings.short_window == SHORT_WINDOW and HALF_LIFE == float("inf")
    user = max(service.base_histories, key=lambda u: len(service.base_histories[u]))
    history = service.base_histories[user]
    profile = ProfileBuilder(service.catalog.tree).fit_transform(
        Histories(np.array([0, len(history)]), history.astype(np.int32)))
    served_nodes = {(n["level"], n["node"]): n for n in client.get(f"/users/{user}/interests").json()["nodes"]}
    for (level, node), n in served_nodes.items():
        assert n["long"] == pytest.approx(profile.long[level - 1][0, node], abs=1e-4)
        assert n["short"] == pytest.approx(profile.short[level - 1][0, node], abs=1e-4)


def test_reasons_claim_only_what_the_numbers_hold():
    from arborec.profiles import reason_text

    path = ["Makeup", "Lips"]
    assert reason_text(path, long=0.2, short=0.6, n_items=4, n_history=30) == \
        "a recent interest: 6 of your last 10 events are in Makeup > Lips"
    assert reason_text(path, long=0.1, short=0.1, n_items=1, n_history=30).startswith("related to 1 item ")
    assert reason_text(path, long=0.4, short=0.1, n_items=12, n_history=30).startswith("one of your lasting")
    # a short history is all "recent": no recent-versus-lasting claim, only the count
    assert reason_text(path, long=0.5, short=0.5, n_items=2, n_history=4).startswith("related to 2 items")
    assert reason_text(path, long=0.1, short=0.4, n_items=2, n_history=8).startswith("a recent interest: 3 of your last 8")
    assert reason_text(path, 0.0, 0.0, 0, 30, matched=False) == "something new for you, in Makeup > Lips"
    assert "liked" not in reason_text(path, 0.3, 0.0, 5, 30)
