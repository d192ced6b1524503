"""Shared by the serve tests: a small synthetic service with an offline text encoder, and a live server."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class HashingEncoder:
    """A deterministic bag-of-words text encoder (feature hashing): texts sharing words get close vectors.

    Stands in for the language model in tests (no model files, instant); the service only needs
    ``encode(list[str]) -> (n, d)`` L2-normalised vectors.
    """

    def __init__(self, dim: int = 64):
        self.dim = dim

    def encode(self, texts, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z']+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def synthetic_vectors(data, encoder: HashingEncoder) -> np.ndarray:
    from arborec.text import ItemTextTemplate

    return encoder.encode(ItemTextTemplate().render(data.catalog))


def make_service(db_url: str, api_key_hash: str, n_users: int = 300, model: str = "ease", **params):
    """(service, data): EASE (or another harness model) on synthetic data, served from ``db_url``."""
    from arborec.data import leave_one_out, make_synthetic, prepare
    from arborec.recommenders import make_model
    from arborec.serve import ServeSettings, service_from_data

    data = prepare(make_synthetic(n_users=n_users, seed=0))
    recommender = make_model(model, **params).fit(leave_one_out(data), data)
    encoder = HashingEncoder()
    settings = ServeSettings(db_url=db_url, api_key_hash=api_key_hash)
    return service_from_data(data, recommender, settings, vectors=synthetic_vectors(data, encoder),
                             encoder=encoder), data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], port: int, env: dict | None = None, timeout: float = 60.0) -> subprocess.Popen:
    """``python -m arborec serve ARGS --port PORT`` in a subprocess; returns once /health answers."""
    import httpx

    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "arborec", "-q", "serve", *args, "--port", str(port)],
                            cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not answer /health in time")
