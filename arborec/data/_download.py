"""Downloads of public datasets from their official URLs, checksum-verified, unpacked into the cache."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

import platformdirs
import pooch
import requests

from arborec.diagnostics import ChecksumError, DataFormatError, DatasetNotFoundError, logger

#: Seconds without an answer from a server before a download is given up.
DOWNLOAD_TIMEOUT = 60

_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_AMAZON_2014 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
_MIND = "https://mind201910small.blob.core.windows.net/release/"
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")


def private_tmp(path: str | Path) -> Path:
    """A hidden sibling of ``path`` that no other process or call picks: write there, then ``os.replace`` it onto
    ``path`` (a stop mid-write leaves the old file; two processes writing at once never share a half-written one)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def cache_dir() -> Path:
    """Where downloads and prepared data are cached (``ARBOREC_CACHE_DIR`` overrides)."""
    return Path(os.environ.get("ARBOREC_CACHE_DIR") or platformdirs.user_cache_dir("arborec"))


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset on the web.

    Attributes
    ----------
    url : str
        Where to download it from.
    md5_url : str, optional
        A checksum file published beside it (GroupLens publishes ``<zip>.md5``). Without one, the
        file is trusted on first use (see :func:`fetch`).
    unpack : bool
        A zip archive to extract (a single top folder in it is dropped); otherwise the file is
        placed as is (gzipped files stay gzipped: the loaders read them directly).
    subdir : str
        Where its content goes, relative to the dataset folder (default: the folder itself).
    """

    url: str
    md5_url: str | None = None
    unpack: bool = False
    subdir: str = ""

    @property
    def filename(self) -> str:
        """The file name at the end of the URL (the name it is saved under)."""
        return urlparse(self.url).path.rstrip("/").rsplit("/", 1)[-1]


def grouplens_files(archive: str) -> tuple[RemoteFile, ...]:
    """A MovieLens archive (``"ml-1m.zip"``) on files.grouplens.org, with its published md5."""
    return (RemoteFile(_GROUPLENS + archive, md5_url=_GROUPLENS + archive + ".md5", unpack=True),)


def amazon2014_files(category: str) -> tuple[RemoteFile, ...]:
    """The 2014 Amazon 5-core reviews and metadata of a category (``"Beauty"``, ``"Toys_and_Games"``...).

    No checksums are published for them: they are trusted on first use.
    """
    return (RemoteFile(f"{_AMAZON_2014}meta_{category}.json.gz"),
            RemoteFile(f"{_AMAZON_2014}reviews_{category}_5.json.gz"))


def mind_files(size: str = "small", splits: tuple[str, ...] = ("train", "dev")) -> tuple[RemoteFile, ...]:
    """MIND archives (``MINDsmall_train.zip``...), each unpacked into a folder named after its split.

    No checksums are published for them: they are trusted on first use.
    """
    return tuple(RemoteFile(f"{_MIND}MIND{size}_{split}.zip", unpack=True, subdir=split) for split in splits)


def fetch(name: str, files: tuple[RemoteFile, ...], dest: str | Path | None = None,
          progressbar: bool = False) -> Path:
    """Download, verify and unpack the files of a dataset; return the dataset folder.

    Downloads are kept in ``cache_dir()/"downloads"/<name>/`` and their content placed in
    ``dest`` (default ``cache_dir()/"datasets"/<name>/``, a folder :func:`load_dataset` searches).

    Verification: a file with a published md5 (MovieLens) must match it. Every downloaded file's
    sha256 is recorded in ``cache_dir()/"downloads"/"manifest.json"``; a file without a
    published checksum (Amazon, MIND) is *trusted on first use*: the sha256 recorded at its
    first download is the reference every later use of the file (and any new download of it)
    must match. A file already downloaded and matching is not downloaded again.

    Raises
    ------
    ChecksumError
        A file does not match its published md5 or its recorded sha256 (the bad download is
        deleted; the message says how to accept a file that legitimately changed).
    DatasetNotFoundError
        A server could not be reached or answered with an error (e.g. when offline).
    """
    dest = Path(dest) if dest is not None else cache_dir() / "datasets" / name
    downloads = cache_dir() / "downloads" / name
    local = []
    for remote in files:
        try:
            local.append(_retrieve(remote, downloads, progressbar))
        except requests.exceptions.RequestException as exc:
            raise DatasetNotFoundError(f"could not download {remote.url} ({_reason(exc)})") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dest.parent))
    try:
        for remote, path in zip(files, local):
            target = staging / remote.subdir
            target.mkdir(parents=True, exist_ok=True)
            if remote.unpack:
                unzip(path, target)
            else:
                _link_or_copy(path, target / path.name)
        _move_into(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("%s: %d file(s) downloaded and verified, unpacked into %s", name, len(files), dest)
    return dest


def manifest_path() -> Path:
    """The JSON file recording the sha256 of every downloaded file, by URL."""
    return cache_dir() / "downloads" / "manifest.json"


def _load_manifest() -> dict:
    path = manifest_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise DataFormatError(path, "a JSON object of recorded checksums (delete the file to start afresh)") from None


def _save_manifest(manifest: dict) -> None:
    path = manifest_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_tmp(path)
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def parse_md5(text: str, source: str = "md5 file") -> str:
    """The md5 digest in a checksum file, in either ``md5sum`` or BSD (``MD5 (f) = ...``) format."""
    m = _MD5.search(text)
    if m is None:
        raise DataFormatError(source, "an md5 checksum (32 hexadecimal digits)", 1, text.strip()[:80])
    return m.group(1).lower()


@contextmanager
def _quiet_pooch():
    """Pooch logs every download to stderr; arborec's own logger reports instead."""
    log = pooch.get_logger()
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def _retrieve(remote: RemoteFile, downloads: Path, progressbar: bool) -> Path:
    manifest = _load_manifest()
    record = manifest.get(remote.url)
    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=DOWNLOAD_TIMEOUT)
    if remote.md5_url:
        md5_cached = downloads / (remote.filename + ".md5")
        if not (downloads / remote.filename).exists():
            md5_cached.unlink(missing_ok=True)  # a new download gets a fresh checksum (ml-latest changes)
        with _quiet_pooch():
            md5_file = pooch.retrieve(remote.md5_url, known_hash=None, fname=remote.filename + ".md5",
                                      path=downloads, downloader=pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT))
        known = "md5:" + parse_md5(Path(md5_file).read_text(encoding="utf-8", errors="replace"), remote.md5_url)
        how = f"published md5 ({remote.md5_url})"
    elif record is not None:
        known = "sha256:" + record["sha256"]
        how = f"sha256 recorded on first download ({manifest_path()})"
    else:
        known, how = None, "none yet: trusted on first use"
    try:
        with _quiet_pooch():
            path = Path(pooch.retrieve(remote.url, known_hash=known, fname=remote.filename, path=downloads,
                                       downloader=downloader))
    except ValueError as exc:
        if "hash" not in str(exc):
            raise
        hint = ("the published checksum and the file disagree: try again later" if remote.md5_url else
                f"if the file legitimately changed upstream, remove its entry from {manifest_path()}")
        raise ChecksumError(f"{remote.url}: the download does not match its checksum, {how}; "
                            f"it was deleted ({hint})") from None
    sha256 = pooch.file_hash(str(path), alg="sha256")
    if record is None or record.get("sha256") != sha256:
        if record is not None:  # only reachable with a published md5, which is the authority
            logger.info("%s changed upstream (its published md5 matches); recorded sha256 updated", remote.url)
        manifest[remote.url] = {
            "file": str(path.relative_to(cache_dir())) if path.is_relative_to(cache_dir()) else str(path),
            "sha256": sha256,
            "size": path.stat().st_size,
            "verified_by": "published md5" if remote.md5_url else "trust on first use",
            "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _save_manifest(manifest)
        if known is None:
            logger.info("%s: no published checksum; sha256 %s recorded in %s and checked on every later use",
                        remote.url, sha256, manifest_path())
    return path


def _reason(exc: requests.exceptions.RequestException) -> str:
    """A one-line reason for a network error, without the request library's internals."""
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"the server answered HTTP {exc.response.status_code}"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {DOWNLOAD_TIMEOUT} s"
    if isinstance(exc, requests.exceptions.ConnectionError):
        host = urlparse(exc.request.url).netloc if getattr(exc, "request", None) is not None else "the server"
        return f"could not connect to {host}: no network connection, or the server is down"
    return type(exc).__name__


def unzip(archive: str | Path, target: str | Path) -> None:
    """Extract a zip archive into ``target``, dropping a single top folder (``ml-1m/...``).

    Members that would land outside ``target`` and macOS ``__MACOSX/`` entries are skipped.
    """
    archive, target = Path(archive), Path(target)
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise DataFormatError(archive, "a zip archive") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        tops = {m.filename.split("/", 1)[0] for m in members}
        strip = len(tops) == 1 and all("/" in m.filename for m in members)
        root = target.resolve()
        skipped = 0
        for member in members:
            rel = member.filename.split("/", 1)[1] if strip else member.filename
            out = (target / rel).resolve()
            if not out.is_relative_to(root):
                skipped += 1
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    if skipped:
        logger.warning("%s: %d member(s) with paths outside the archive folder skipped", archive, skipped)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _move_into(staging: Path, dest: Path) -> None:
    """Move the staged content to ``dest``: a rename when ``dest`` is new, else entry by entry."""
    if not dest.exists():
        staging.rename(dest)
        return
    for entry in staging.iterdir():
        target = dest / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        entry.rename(target)
