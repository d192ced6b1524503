"""The engine switch: "local" (default, no Ray needed) or "ray" (a local Ray instance or an existing cluster)."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

from arborec.diagnostics import ConfigError, check_param, logger

ENGINES = ("local", "ray")
RAY_EXTRA_HINT = 'the Ray engine needs Ray: pip install "arborec[ray]" (or "ray[data,train]")'


def ray_available() -> bool:
    """True when Ray can be imported (the optional ``ray`` extra is installed)."""
    return importlib.util.find_spec("ray") is not None


def check_engine(engine: str) -> str:
    """Validate ``engine``; for "ray", check that Ray is installed (naming the extra to install)."""
    check_param("engine", engine, engine in ENGINES, " or ".join(map(repr, ENGINES)))
    if engine == "ray" and not ray_available():
        raise ConfigError(RAY_EXTRA_HINT)
    return engine


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None):
    """Use the running Ray instance, or connect to ``address`` (``"auto"``, ``"ray://host:10001"``), or start
    a local instance with ``num_cpus``; an instance or connection opened here is shut down on exit.

    Workers import this same arborec: a local instance gets its folder on ``PYTHONPATH``, a remote
    cluster gets the package shipped with the job (``runtime_env`` ``py_modules``), so the cluster's
    nodes need Ray and arborec's dependencies but not arborec itself.
    """
    check_engine("ray")
    import ray

    import arborec

    if ray.is_initialized():
        yield ray
        return
    package = Path(arborec.__file__).resolve().parent
    if address is None:
        runtime_env = {"env_vars": {"PYTHONPATH": str(package.parent)}}
    else:
        runtime_env = {"py_modules": [str(package)]}
    ray.init(address=address, num_cpus=num_cpus if address is None else None, runtime_env=runtime_env,
             include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    logger.info("Ray %s: %s", "local instance" if address is None else f"cluster at {address}",
                ray.cluster_resources())
    try:
        yield ray
    finally:
        ray.shutdown()
