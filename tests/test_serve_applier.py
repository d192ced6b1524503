"""Events stored and applied in a process of their own (`EventApplier`): the same answers as in one process,
forget reaching the child, items added after the fork, retries, and the service going on if the child dies."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from serve_helpers import make_service  # noqa: E402

from arborec.serve.schemas import EventIn, ItemIn  # noqa: E402


@pytest.fixture()
def pair(tmp_path):
    """(one-process service, service with an EventApplier, data), each over its own SQLite file."""
    from arborec.serve.applier import EventApplier

    plain, data = make_service(f"sqlite:///{tmp_path / 'plain.db'}", None)
    split, _ = make_service(f"sqlite:///{tmp_path / 'split.db'}", None)
    split.applier = EventApplier(split)
    yield plain, split, data
    split.applier.close()


def _batches(data, n_batches: int = 4, size: int = 60, seed: int = 0):
    """Event batches over known users (some twice in a batch) and a few new ones, with event ids."""
    rng = np.random.default_rng(seed)
    users = [str(u) for u in data.user_ids[:40]] + [f"new-{i}" for i in range(10)]
    out, n = [], 0
    for _ in range(n_batches):
        batch = []
        for _ in range(size):
            item = str(data.item_ids[rng.integers(data.n_items)])
            batch.append(EventIn(user=users[rng.integers(len(users))], item=item, timestamp=1_700_000_000 + n,
                                 event_id=f"ev-{n}"))
            n += 1
        out.append(batch)
    return out


def _answers(service, users):
    return {u: (service.recommend(u, k=8), service.interests(u)) for u in users}


def test_the_child_gives_the_answers_one_process_gives(pair):
    plain, split, data = pair
    watched = [str(u) for u in data.user_ids[:12]] + ["new-0", "new-3"]
    for service in (plain, split):
        for u in watched[:6]:  # some users are held in memory before the events, the others are not
            service.recommend(u)
    for batch in _batches(data):
        assert plain.ingest(batch) == split.ingest(batch)
    assert split.applier.process.is_alive() and not split.applier.failed
    assert _answers(split, watched) == _answers(plain, watched)
    np.testing.assert_array_equal(split.catalog.counts, plain.catalog.counts)
    np.testing.assert_array_equal(split.segmentation.sizes, plain.segmentation.sizes)
    np.testing.assert_array_equal(split.segmentation.item_counts, plain.segmentation.item_counts)
    # the events were stored by the child, in the same store the reads use
    assert split.store.user_events(watched[0]) == plain.store.user_events(watched[0])


def test_a_retried_batch_lands_once(pair):
    _, split, data = pair
    batch = _batches(data, n_batches=1, size=20)[0]
    user = batch[0].user
    split.ingest(batch)
    before = split.interests(user)["n_events"]
    assert split.ingest(batch) == list(dict.fromkeys(e.user for e in batch))  # acknowledged again
    assert split.interests(user)["n_events"] == before
    assert len(split.store.user_events(user)) == sum(e.user == user for e in batch)


def test_forget_reaches_the_child(pair):
    """After a delete, the child holds nothing of the user: their next event starts a new history."""
    _, split, data = pair
    user = str(data.user_ids[0])
    items = [str(i) for i in data.item_ids[:5]]
    split.ingest([EventIn(user=user, item=i, timestamp=1_700_000_000 + j) for j, i in enumerate(items)])
    assert split.interests(user)["n_events"] > 5  # batch log + 5
    split.forget(user)
    split.ingest([EventIn(user=user, item=items[0], timestamp=1_800_000_000)])
    assert split.interests(user)["n_events"] == 1
    assert split.export(user)["batch_history"] == []


def test_items_added_after_the_fork_can_be_used_in_events(pair):
    _, split, _ = pair
    split.add_items([ItemIn(item="after-fork", title="Pico Bold Mascara", category_path=["Makeup", "Eyes"])])
    split.ingest([EventIn(user="u-new", item="after-fork", timestamp=1_700_000_000)])
    assert split.recent_items("u-new")["items"][0]["item"] == "after-fork"


def test_the_service_goes_on_when_the_child_dies(pair):
    """Events are applied in the serving process from then on; /health and /metrics say so."""
    from fastapi.testclient import TestClient

    from arborec.serve import create_app, hash_api_key

    plain, split, data = pair
    key = "applier-test-key-0123456789abcdef0123"
    client = TestClient(create_app(split, split.settings.model_copy(update={"api_key_hash": hash_api_key(key)})),
                        headers={"X-API-Key": key})
    health = client.get("/health").json()
    assert health["events"] == "event process" and health["status"] == "ok"
    assert "arborec_event_process_up 1.0" in client.get("/metrics").text
    first, second = _batches(data, n_batches=2)
    for service in (plain, split):
        service.ingest(first)
    os.kill(split.applier.process.pid, signal.SIGKILL)
    split.applier.process.join(5)
    response = client.post("/events", json={"events": [e.model_dump() for e in second]})
    assert response.status_code == 503 and response.headers["retry-after"] == "1"  # may or may not be stored
    assert "send it again" in response.json()["detail"]
    assert split.ingest(second) == plain.ingest(second)  # the retry (event ids: once), applied here from now on
    assert split.applier.failed
    health = client.get("/health").json()
    assert health["events"] == "in-process (event process stopped)" and health["status"] == "degraded"
    assert "arborec_event_process_up 0.0" in client.get("/metrics").text
    watched = sorted({e.user for e in first + second})[:10]
    assert _answers(split, watched) == _answers(plain, watched)


def test_errors_in_the_child_reach_the_caller(pair):
    """An event naming an unknown item is refused before anything is sent; a failure in the child is raised
    here, and the child goes on."""
    import sqlite3

    from arborec.diagnostics import UnknownItemError

    _, split, data = pair
    event = EventIn(user=str(data.user_ids[1]), item=str(data.item_ids[0]), timestamp=1_700_000_000)
    with pytest.raises(UnknownItemError, match="no-such-item"):
        split.ingest([EventIn(user="u", item="no-such-item", timestamp=1_700_000_000)])
    path = split.store.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'events refused'); END")
    commits = []
    split.store.on_commit = lambda seconds, ok: commits.append(ok)  # what the app's metrics hook into
    with pytest.raises(Exception, match="events refused"):  # the child's commit fails
        split.ingest([event])
    assert commits == [False]  # the child's failed commit, counted here
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER refuse")
    assert not split.applier.failed
    split.ingest([event])
    assert len(split.store.user_events(event.user)) == 1 and commits == [False, True]


def test_an_in_memory_store_is_refused(tmp_path):
    from arborec.diagnostics import ArborecError
    from arborec.serve.applier import EventApplier

    service, _ = make_service("sqlite://", None)
    with pytest.raises(ArborecError, match="in-memory"):
        EventApplier(service)
