"""Shared fixtures: a small generated split, and the real datasets beside the repository when present."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def synthetic():
    """(prepared data, split) of the generated dataset with a planted hierarchy."""
    from arborec.data import leave_one_out, make_synthetic, prepare

    data = prepare(make_synthetic(n_users=500, seed=0))
    return data, leave_one_out(data)


@pytest.fixture(scope="session")
def shared_data_dir():
    """The real benchmark data folder (../shared/data); tests using it skip when it is absent."""
    if not (SHARED_DATA / "ml-100k" / "u.data").exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA
