"""What the retrain controller reads from artifact and log storage (any fsspec URI), blocking.

- ``read_manifest(uri)``: an artifact's ``manifest.json`` (a candidate's, written by
  ``rankops retrain``, or the parent's), ``None`` when there is none yet.
- ``count_feedback(log, since)``: feedback records with ``time >= since`` in the durable
  feedback log. The layout is the one ``rankops.serving.feedback_log`` writes
  (``LOG/feedback/YYYY-MM-DD/<object>.jsonl``, one JSON record per line, objects written once
  and never rewritten; tests/unit/test_retrain_store.py checks it against that writer), read
  here without the serving stack. As objects are immutable, each one's count is cached.
- ``count_train_queries(data)``: distinct queries of the base dataset's train split
  (``qrels/train.tsv``, BEIR layout), the denominator of the new-data fraction.

Run them in a thread (``asyncio.to_thread``): fsspec calls block.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import fsspec

__all__ = ["RetrainStoreError", "count_feedback", "count_train_queries", "read_manifest"]

MANIFEST = "manifest.json"
_CACHE_LIMIT = 4096
# (object path, since) -> records at or after since: objects never change once written.
_counts: dict[tuple[str, float], int] = {}


class RetrainStoreError(ValueError):
    """A location that cannot be read (bad URI, a missing filesystem extra, unreadable data)."""


def _fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise RetrainStoreError(f"cannot open {uri}: {exc}") from exc
    return fs, path.rstrip("/") or "/"


def read_manifest(uri: str) -> dict[str, Any] | None:
    fs, base = _fs(uri)
    path = f"{base}/{MANIFEST}"
    try:
        if not fs.exists(path):
            return None
        data = json.loads(fs.cat_file(path))
    except (OSError, ValueError) as exc:
        raise RetrainStoreError(f"cannot read {uri}/{MANIFEST}: {exc}") from exc
    if not isinstance(data, dict):
        raise RetrainStoreError(f"{uri}/{MANIFEST} is not a JSON object")
    return data


def _count_object(fs: fsspec.AbstractFileSystem, path: str, since: float) -> int:
    key = (path, since)
    if key in _counts:
        return _counts[key]
    n = 0
    for line in fs.cat_file(path).splitlines():
        if line.strip() and float(json.loads(line)["time"]) >= since:
            n += 1
    if len(_counts) >= _CACHE_LIMIT:
        _counts.clear()
    _counts[key] = n
    return n


def count_feedback(log: str, since: float) -> int:
    fs, base = _fs(log)
    root = f"{base}/feedback"
    first_day = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
    try:
        if not fs.exists(root):
            return 0
        total = 0
        for day_path in sorted(fs.ls(root, detail=False)):
            if day_path.rstrip("/").rsplit("/", 1)[-1] < first_day:
                continue  # an object sits in the day of its write, never before its records' days
            for path in sorted(fs.ls(day_path, detail=False)):
                if path.endswith(".jsonl"):
                    total += _count_object(fs, path, since)
        return total
    except (OSError, ValueError, KeyError) as exc:
        raise RetrainStoreError(f"cannot read the feedback log at {log}: {exc}") from exc


def count_train_queries(data: str) -> int:
    fs, base = _fs(data)
    path = f"{base}/qrels/train.tsv"
    try:
        text = fs.cat_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RetrainStoreError(f"cannot read {data}/qrels/train.tsv: {exc}") from exc
    queries = set()
    for i, line in enumerate(text.splitlines()):
        fields = line.split("\t")
        if not line.strip() or (i == 0 and fields[0] in ("query-id", "query_id", "qid")):
            continue
        queries.add(fields[0])
    return len(queries)
