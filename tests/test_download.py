"""Downloads without the internet: archives served from a loopback HTTP server, checksums, offline errors."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import socket
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from arborec.data import describe_datasets, load_dataset
from arborec.data._download import RemoteFile, amazon2014_files, manifest_path, parse_md5, unzip
from arborec.data._registry import REGISTRY, DatasetSpec
from arborec.data.movielens import read_movielens_dat
from arborec.diagnostics import ChecksumError, DataFormatError, DatasetNotFoundError

RATINGS = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
MOVIES = "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation\n"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over ``tmp_path/www``: yields (that folder, its base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ARBOREC_CACHE_DIR", str(folder))
    monkeypatch.delenv("ARBOREC_DATA_DIR", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return folder


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def make_zip(path: Path, members: dict[str, str]) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path.read_bytes()


def serve_movielens(root: Path, base: str, monkeypatch, corrupt: bool = False) -> None:
    """Serve a tiny ``ml-1m.zip`` with a GroupLens-style (BSD format) ``.md5``, and point ml-1m at it."""
    data = make_zip(root / "ml-1m.zip", {"ml-1m/ratings.dat": RATINGS, "ml-1m/movies.dat": MOVIES})
    (root / "ml-1m.zip.md5").write_text(f"MD5 (ml-1m.zip) = {hashlib.md5(data).hexdigest()}\n")
    if corrupt:
        (root / "ml-1m.zip").write_bytes(data[:-10] + b"0123456789")
    remote = (RemoteFile(base + "ml-1m.zip", md5_url=base + "ml-1m.zip.md5", unpack=True),)
    monkeypatch.setitem(REGISTRY, "ml-1m", dataclasses.replace(REGISTRY["ml-1m"], remote=remote))


def test_download_verifies_published_md5_and_unpacks(server, cache, monkeypatch):
    root, base = server
    serve_movielens(root, base, monkeypatch)
    ds = load_dataset("ml-1m")
    assert ds.name == "ml-1m" and len(ds.interactions) == 3
    assert ds.catalog.set_index("item").loc["661", "title"] == "James and the Giant Peach"
    folder = cache / "datasets" / "ml-1m"
    assert (folder / "ratings.dat").exists()  # the archive's top folder is dropped
    record = json.loads(manifest_path().read_text())[base + "ml-1m.zip"]
    assert record["verified_by"] == "published md5"
    assert record["sha256"] == hashlib.sha256((root / "ml-1m.zip").read_bytes()).hexdigest()
    # later calls read the cache, without the network
    (root / "ml-1m.zip").unlink()
    assert len(load_dataset("ml-1m").interactions) == 3


def test_download_rejects_file_not_matching_md5(server, cache, monkeypatch):
    root, base = server
    serve_movielens(root, base, monkeypatch, corrupt=True)
    with pytest.raises(ChecksumError, match="does not match its checksum, published md5"):
        load_dataset("ml-1m")
    assert not (cache / "datasets" / "ml-1m").exists()
    assert not (cache / "downloads" / "ml-1m" / "ml-1m.zip").exists()  # the bad download is deleted


def serve_amazon(root: Path, base: str, monkeypatch, rating: float = 5.0) -> None:
    review = {"reviewerID": "U1", "asin": "B001", "overall": rating, "unixReviewTime": 1360000000}
    with gzip.open(root / "reviews_Beauty_5.json.gz", "wt") as f:
        f.write(json.dumps(review) + "\n")
    with gzip.open(root / "meta_Beauty.json.gz", "wt") as f:
        f.write("{'asin': 'B001', 'title': 'Toner', 'categories': [['Beauty', 'Skin Care']]}\n")
    remote = tuple(RemoteFile(r.url.replace(r.url.rsplit("/", 1)[0] + "/", base)) for r in amazon2014_files("Beauty"))
    monkeypatch.setitem(REGISTRY, "amazon-beauty", dataclasses.replace(REGISTRY["amazon-beauty"], remote=remote))


def test_download_without_checksum_is_trusted_on_first_use(server, cache, monkeypatch):
    root, base = server
    serve_amazon(root, base, monkeypatch)
    ds = load_dataset("amazon-beauty")
    assert ds.has_timestamps and ds.catalog.set_index("item").loc["B001", "category_path"] == ["Beauty", "Skin Care"]
    assert (cache / "datasets" / "amazon-beauty" / "reviews_Beauty_5.json.gz").exists()  # kept gzipped
    manifest = json.loads(manifest_path().read_text())
    reviews_url = base + "reviews_Beauty_5.json.gz"
    assert manifest[reviews_url]["verified_by"] == "trust on first use"
    served = (root / "reviews_Beauty_5.json.gz").read_bytes()
    assert manifest[reviews_url]["sha256"] == hashlib.sha256(served).hexdigest()

    def forget_local_copies():
        for folder in (cache / "datasets" / "amazon-beauty", cache / "downloads" / "amazon-beauty"):
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()

    # the same file downloaded again matches its recorded sha256
    forget_local_copies()
    assert len(load_dataset("amazon-beauty").interactions) == 1
    # a file that changed since it was first seen is rejected, and the message says what to do
    forget_local_copies()
    serve_amazon(root, base, monkeypatch, rating=1.0)
    with pytest.raises(ChecksumError, match="sha256 recorded on first download") as excinfo:
        load_dataset("amazon-beauty")
    assert "remove its entry from" in str(excinfo.value) and "manifest.json" in str(excinfo.value)
    assert not (cache / "datasets" / "amazon-beauty").exists()


def test_cached_download_is_checked_again(server, cache, monkeypatch):
    root, base = server
    serve_amazon(root, base, monkeypatch)
    load_dataset("amazon-beauty")
    cached = cache / "downloads" / "amazon-beauty" / "reviews_Beauty_5.json.gz"
    for f in (cache / "datasets" / "amazon-beauty").iterdir():
        f.unlink()
    (cache / "datasets" / "amazon-beauty").rmdir()
    cached.write_bytes(b"tampered")  # the cached copy no longer matches: it is fetched again and checked
    assert load_dataset("amazon-beauty").interactions["rating"].tolist() == [5.0]
    for f in (cache / "datasets" / "amazon-beauty").iterdir():
        f.unlink()
    (cache / "datasets" / "amazon-beauty").rmdir()
    cached.write_bytes(b"tampered")
    serve_amazon(root, base, monkeypatch, rating=2.0)  # and the server now has another file
    with pytest.raises(ChecksumError):
        load_dataset("amazon-beauty")


def test_offline_gives_a_clear_dataset_not_found(cache, monkeypatch):
    url = closed_port_url() + "ml-1m.zip"
    remote = (RemoteFile(url, md5_url=url + ".md5", unpack=True),)
    monkeypatch.setitem(REGISTRY, "ml-1m", dataclasses.replace(REGISTRY["ml-1m"], remote=remote))
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_dataset("ml-1m")
    message = str(excinfo.value)
    assert "'ml-1m' is not on this machine" in message and "could not connect to 127.0.0.1" in message
    assert "offline" in message and url in message and str(cache / "datasets" / "ml-1m") in message
    assert "HTTPConnectionPool" not in message and "urllib3" not in message
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__  # no requests traceback


def test_http_error_and_download_false(server, cache, monkeypatch):
    root, base = server
    monkeypatch.setitem(REGISTRY, "ml-1m", dataclasses.replace(
        REGISTRY["ml-1m"], remote=(RemoteFile(base + "missing.zip", unpack=True),)))
    with pytest.raises(DatasetNotFoundError, match="HTTP 404"):
        load_dataset("ml-1m")
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_dataset("ml-1m", download=False)
    with pytest.raises(DatasetNotFoundError, match="neither a known dataset"):
        load_dataset("no-such-dataset")


def test_mind_archives_unpack_into_split_folders(server, cache, monkeypatch):
    root, base = server
    news = "N1\tsports\tnfl\tGame\tAbstract\thttps://x\t[]\t[]\nN2\tnews\tus\tVote\t\thttps://y\t[]\t[]\n"
    make_zip(root / "MINDsmall_train.zip", {"news.tsv": news, "behaviors.tsv":
                                            "1\tU1\t11/11/2019 9:05:58 AM\tN2\tN1-1 N2-0\n"})
    make_zip(root / "MINDsmall_dev.zip", {"news.tsv": news, "behaviors.tsv":
                                          "7\tU1\t11/15/2019 9:00:00 AM\tN2\tN2-1\n"})
    remote = tuple(RemoteFile(base + f"MINDsmall_{s}.zip", unpack=True, subdir=s) for s in ("train", "dev"))
    monkeypatch.setitem(REGISTRY, "mind-small", dataclasses.replace(REGISTRY["mind-small"], remote=remote))
    ds = load_dataset("mind-small")
    assert (cache / "datasets" / "mind-small" / "train" / "behaviors.tsv").exists()
    assert (cache / "datasets" / "mind-small" / "dev" / "news.tsv").exists()
    assert ds.interactions["item"].tolist() == ["N2", "N1", "N2"]  # history, train click, dev click


def test_unzip_keeps_members_inside_the_target(tmp_path):
    make_zip(tmp_path / "a.zip", {"data/ok.txt": "x", "data/sub/deep.txt": "y"})
    unzip(tmp_path / "a.zip", tmp_path / "out")
    assert (tmp_path / "out" / "ok.txt").read_text() == "x" and (tmp_path / "out" / "sub" / "deep.txt").exists()
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        zf.writestr("good.txt", "x")
        zf.writestr("../evil.txt", "y")
    unzip(tmp_path / "b.zip", tmp_path / "out2")
    assert (tmp_path / "out2" / "good.txt").exists() and not (tmp_path / "evil.txt").exists()
    (tmp_path / "c.zip").write_text("not a zip")
    with pytest.raises(DataFormatError, match="c.zip: expected a zip archive"):
        unzip(tmp_path / "c.zip", tmp_path / "out3")


def test_parse_md5_formats():
    digest = "0e33842e24a9c977be4e0107933c0723"
    assert parse_md5(f"MD5 (ml-100k.zip) = {digest}\n") == digest
    assert parse_md5(f"{digest.upper()}  ml-100k.zip\n") == digest
    with pytest.raises(DataFormatError):
        parse_md5("<html>not found</html>", "ml-100k.zip.md5")


def test_registered_urls_are_the_official_ones():
    grouplens = "https://files.grouplens.org/datasets/movielens/"
    for name in ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small", "ml-latest"):
        (remote,) = REGISTRY[name].remote
        assert remote.url == f"{grouplens}{name}.zip" and remote.md5_url == remote.url + ".md5" and remote.unpack
    assert [r.url for r in REGISTRY["amazon-beauty"].remote] == [
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_Beauty.json.gz",
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Beauty_5.json.gz"]
    assert all(r.md5_url is None for r in REGISTRY["amazon-beauty"].remote)  # trusted on first use
    assert [r.url for r in REGISTRY["mind-small"].remote] == [
        "https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip",
        "https://mind201910small.blob.core.windows.net/release/MINDsmall_dev.zip"]


def test_describe_datasets(tmp_path, cache, monkeypatch):
    (tmp_path / "data" / "ml-1m").mkdir(parents=True)
    (tmp_path / "data" / "ml-1m" / "ratings.dat").write_text(RATINGS)
    monkeypatch.setitem(REGISTRY, "local-only", DatasetSpec("local-only", read_movielens_dat, "ratings.dat",
                                                            "a dataset without remote files"))
    table = describe_datasets(tmp_path / "data").set_index("name")
    assert table.loc["ml-1m", "location"] == str(tmp_path / "data" / "ml-1m")
    assert table.loc["ml-25m", "location"] == "download"
    assert table.loc["local-only", "location"] == "not available offline"
    assert table.loc["synthetic", "location"] == "generated"
    assert table.loc["amazon-beauty", "aliases"] == "beauty"
    assert table.index.is_unique
