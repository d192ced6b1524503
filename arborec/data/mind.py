"""MIND (Microsoft News Dataset) loader: ``news.tsv`` as the catalog, clicks and histories of ``behaviors.tsv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from arborec.data._tables import Dataset
from arborec.diagnostics import DataFormatError, logger

__all__ = ["read_mind", "mind_split_folders"]

_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
_NEWS_FIELDS = ("news_id", "category", "subcategory", "title", "abstract", "url", "title_entities",
                "abstract_entities")


def mind_split_folders(folder: str | Path) -> list[Path]:
    """The folders holding a ``news.tsv`` + ``behaviors.tsv`` pair: ``folder`` itself, or its
    sub-folders (such as ``train/`` and ``dev/``), sorted by name."""
    folder = Path(folder)
    if (folder / "news.tsv").exists() and (folder / "behaviors.tsv").exists():
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "news.tsv").exists()
                  and (p / "behaviors.tsv").exists()) if folder.is_dir() else []


def read_mind(folder: str | Path, name: str | None = None) -> Dataset:
    """MIND: news articles and the clicks of users on them.

    ``folder`` holds ``news.tsv`` and ``behaviors.tsv``, or holds split folders that each do
    (e.g. ``train/`` and ``dev/`` of MINDsmall): their news are merged and their behaviors
    concatenated, so the dev day follows the training days.

    Catalog (``news.tsv``: news_id, category, subcategory, title, abstract, url, title and
    abstract entities): ``title``, ``description`` = the abstract, ``category_path`` =
    ``[category, subcategory]``.

    Interactions (``behaviors.tsv``: impression id, user id, time such as
    ``11/11/2019 9:05:58 AM``, history, impressions such as ``N123-1 N456-0``):

    * clicks: every impressed news labelled ``-1``, at the impression time (unix seconds, the
      times read as UTC); news shown but not clicked (``-0``) are not events, and unlabelled
      impressions (the test split) are not either; both are counted in the log.
    * history: the news a user clicked before the logged period. Their times are unknown, so
      they are placed before the user's first impression, in listed order: the k-th of n
      history items gets the time ``first_impression - n + k`` (one second apart, the last one
      second before the first impression). A user's history is repeated on each of their
      impressions: it is deduplicated per user (first occurrence kept), the lists of later
      impressions adding only the news not seen before.

    The number of history events is kept in ``Dataset.extra["history_events"]``.
    """
    folder = Path(folder)
    splits = mind_split_folders(folder)
    if not splits:
        raise FileNotFoundError(f"{folder}: no news.tsv + behaviors.tsv (nor split folders holding them)")
    news = pd.concat([_read_news(p / "news.tsv") for p in splits], ignore_index=True)
    n_news = len(news)
    news = news.drop_duplicates(subset="item", keep="first").reset_index(drop=True)
    if len(news) < n_news:
        logger.debug("%s: %d news listed in several splits merged", folder, n_news - len(news))
    behaviors = pd.concat([_read_behaviors(p / "behaviors.tsv") for p in splits], ignore_index=True)
    inter, n_history = _events(behaviors)
    return Dataset(name or folder.name, inter, news, has_timestamps=True, source=str(folder),
                   extra={"history_events": n_history})


def _read_news(path: Path) -> pd.DataFrame:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != len(_NEWS_FIELDS) or not parts[0]:
                raise DataFormatError(path, f"{len(_NEWS_FIELDS)} tab-separated fields ({', '.join(_NEWS_FIELDS)})",
                                      n, line.strip())
            rows.append({"item": parts[0], "title": parts[3], "description": parts[4],
                         "category_path": [c for c in (parts[1], parts[2]) if c]})
    logger.info("%s: read %d news", path, len(rows))
    return pd.DataFrame(rows, columns=["item", "title", "description", "category_path"])


def _read_behaviors(path: Path) -> pd.DataFrame:
    """One row per impression: user, time (unix seconds), history list, clicked list."""
    users, times, histories, clicks = [], [], [], []
    shown = unlabelled = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 5 or not parts[1]:
                raise DataFormatError(path, "5 tab-separated fields (impression id, user id, time, history, "
                                      "impressions)", n, line.strip())
            clicked = []
            for token in parts[4].split():
                news, dash, label = token.rpartition("-")
                if not dash:
                    unlabelled += 1
                elif label == "1" and news:
                    clicked.append(news)
                elif label == "0" and news:
                    shown += 1
                else:
                    raise DataFormatError(path, "impressions such as 'N123-1 N456-0' (label 1 or 0)", n, token)
            users.append(parts[1])
            times.append(parts[2])
            histories.append(parts[3].split())
            clicks.append(clicked)
    parsed = pd.to_datetime(pd.Series(times, dtype=object), format=_TIME_FORMAT, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(path, f"a time such as '11/11/2019 9:05:58 AM' ({_TIME_FORMAT})",
                              _line_number(path, row), times[row])
    n_clicks = sum(map(len, clicks))
    logger.info("%s: %d impressions, %d clicks; %d news shown but not clicked and %d unlabelled impressions "
                "are not events", path, len(users), n_clicks, shown, unlabelled)
    return pd.DataFrame({"user": users, "time": parsed.to_numpy().astype("datetime64[s]").astype("int64"),
                         "history": histories, "clicks": clicks})


def _line_number(path: Path, row: int) -> int:
    """The 1-based line of the ``row``-th non-blank line."""
    with open(path, encoding="utf-8") as f:
        seen = -1
        for n, line in enumerate(f, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return n
    return row + 1


def _events(behaviors: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Clicks at their impression time, preceded by each user's deduplicated history."""
    behaviors = behaviors.iloc[np.argsort(behaviors["time"].to_numpy(), kind="stable")]
    first_time: dict[str, int] = {}
    history: dict[str, dict[str, None]] = {}  # an insertion-ordered set per user
    for user, t, items in zip(behaviors["user"], behaviors["time"], behaviors["history"]):
        if user not in first_time:
            first_time[user] = int(t)
            history[user] = {}
        history[user].update(dict.fromkeys(items))
    h_users, h_items, h_times = [], [], []
    for user, items in history.items():
        t0, n = first_time[user], len(items)
        h_users.extend([user] * n)
        h_items.extend(items)
        h_times.extend(range(t0 - n, t0))
    hist = pd.DataFrame({"user": h_users, "item": h_items, "timestamp": np.asarray(h_times, dtype="int64")})
    clicks = behaviors[["user", "time", "clicks"]].explode("clicks").dropna(subset=["clicks"])
    clicks = pd.DataFrame({"user": clicks["user"].to_numpy(), "item": clicks["clicks"].to_numpy(),
                           "timestamp": clicks["time"].to_numpy().astype("int64")})
    events = pd.concat([hist, clicks], ignore_index=True)
    events = events.iloc[np.argsort(events["timestamp"].to_numpy(), kind="stable")].reset_index(drop=True)
    logger.info("MIND: %d history events (placed before each user's first impression) and %d clicks",
                len(hist), len(clicks))
    return events, len(hist)
