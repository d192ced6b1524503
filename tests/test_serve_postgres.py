"""The service over PostgreSQL: the same code as SQLite, against a throwaway server started here (skipped without one)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("psycopg")

from serve_helpers import free_port, make_service  # noqa: E402

KEY = "pg-test-key-0123456789abcdef0123456789"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def pg_url():
    """A PostgreSQL server in a temporary folder (as user postgres when run as root); yields its URL."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="arborec-pg-"))
    if os.geteuid() == 0:  # postgres refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        user = "postgres" if subprocess.run(["id", "postgres"], capture_output=True).returncode == 0 else "nobody"
        shutil.chown(folder, user)
        as_user = ["runuser", "-u", user, "--"]
    data, port = folder / "data", free_port()

    def run(*cmd):
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=60)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "arborec", "--auth=trust", "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=on", "start")
    try:
        yield f"postgresql+psycopg://arborec@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_service_runs_on_postgresql(pg_url):
    from fastapi.testclient import TestClient

    from arborec.serve import create_app, hash_api_key

    service, data = make_service(pg_url, hash_api_key(KEY), n_users=120)
    assert service.store.engine.dialect.name == "postgresql"
    auth = {"X-API-Key": KEY}
    client = TestClient(create_app(service), headers=auth)
    events = [{"user": "pg-user", "item": str(data.item_ids[j]), "timestamp": 1_700_000_000 + j} for j in range(5)]
    assert client.post("/events", json={"events": events}, headers=auth).json()["accepted"] == 5
    added = client.post("/items", json={"items": [{"item": "pg-new", "title": "Kiri Soft Mascara No. 77",
                                                    "category_path": ["Makeup", "Eyes", "Mascara"]}]}, headers=auth)
    assert added.status_code == 200 and added.json()["items"][0]["path"] == ["Makeup", "Eyes", "Mascara"]
    assert client.post("/events", json={"user": "pg-user", "item": "pg-new", "timestamp": 1_700_000_010},
                       headers=auth).status_code == 200
    profile = client.get("/users/pg-user/interests").json()
    assert profile["n_events"] == 6 and client.get("/health").json()["store"] == "ok"
    assert service.store.count_events() == 6

    # a restart over the same database rebuilds the user and the added item
    again, _ = make_service(pg_url, hash_api_key(KEY), n_users=120)
    assert again.catalog.index_of["pg-new"] == service.catalog.index_of["pg-new"]
    assert TestClient(create_app(again), headers=auth).get("/users/pg-user/interests").json() == profile
