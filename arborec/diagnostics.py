"""Every error arborec raises, each saying when it is raised."""

from __future__ import annotations

import logging

logger = logging.getLogger("arborec")


class ArborecError(Exception):
    """Base class of every error arborec raises on purpose."""


class DataFormatError(ArborecError, ValueError):
    """A data file does not have the layout its loader expects.

    Raised by the loaders in :mod:`arborec.data`, naming the file, the (1-based) line when one is
    at fault, and what was expected there.
    """

    def __init__(self, path, expected: str, line: int | None = None, got: str | None = None):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.got = got
        where = self.path if line is None else f"{self.path}, line {line}"
        msg = f"{where}: expected {expected}"
        if got is not None:
            shown = got if len(got) <= 120 else got[:117] + "..."
            msg += f", got {shown!r}"
        super().__init__(msg)


class DatasetNotFoundError(ArborecError, FileNotFoundError):
    """A dataset is neither in a local folder, nor in the cache, nor downloadable (offline)."""


class ChecksumError(ArborecError):
    """A downloaded or cached file does not match its recorded checksum."""


class NotFittedError(ArborecError, RuntimeError):
    """A model method that needs learned state was called before ``fit``."""


class ConfigError(ArborecError, ValueError):
    """A parameter has a value outside its allowed range (the message names both)."""


def check_param(name: str, value, ok: bool, allowed: str) -> None:
    """Raise :class:`ConfigError` naming ``name``, its ``value`` and the ``allowed`` range."""
    if not ok:
        raise ConfigError(f"{name}={value!r} is not allowed: expected {allowed}")


class UnknownItemError(ArborecError, LookupError):
    """An event or request names an item the service's catalogue does not have (add it with POST /items first)."""


class DuplicateItemError(ArborecError, ValueError):
    """POST /items names an item that is already in the catalogue."""
