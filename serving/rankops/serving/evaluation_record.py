"""Evaluation results written beside the artifact, and BEIR data at any fsspec URI.

``record_evaluation`` writes ``<artifact>/evaluations/<UTC time>-<split>.json``: the result,
when, on which data, and the sha256 of the manifest it judged. The manifest and the files it
lists are never touched, so the artifact still verifies and its digests still identify it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec

from rankops.serving.artifact import MANIFEST

EVALUATIONS = "evaluations"


@contextlib.contextmanager
def local_dataset(uri: str) -> Iterator[Path]:
    """A local directory holding the BEIR dataset at ``uri`` (copied when it is remote)."""
    fs, path = fsspec.core.url_to_fs(uri)
    if "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        yield Path(path)
        return
    if not fs.isdir(path):
        raise FileNotFoundError(f"dataset directory not found: {uri}")
    with tempfile.TemporaryDirectory(prefix="rankops-data-") as tmp:
        for rel in ("corpus.jsonl", "queries.jsonl"):
            fs.get(f"{path.rstrip('/')}/{rel}", str(Path(tmp) / rel))
        (Path(tmp) / "qrels").mkdir()
        for remote in fs.glob(f"{path.rstrip('/')}/qrels/*.tsv"):
            fs.get(remote, str(Path(tmp) / "qrels" / remote.rsplit("/", 1)[-1]))
        yield Path(tmp)


def record_evaluation(
    model_uri: str, result: dict[str, Any], *, data: str, now: dt.datetime | None = None
) -> str:
    """Write the dated result beside the artifact; returns its URI. Never overwrites one."""
    fs, base = fsspec.core.url_to_fs(model_uri)
    base = base.rstrip("/")
    manifest_sha = hashlib.sha256(fs.cat_file(f"{base}/{MANIFEST}")).hexdigest()
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    record = {
        "format": 1,
        "evaluatedAt": when.isoformat().replace("+00:00", "Z"),
        "data": data,
        "manifestSha256": manifest_sha,
        **result,
    }
    fs.makedirs(f"{base}/{EVALUATIONS}", exist_ok=True)
    name, n = f"{stamp}-{result.get('split', 'split')}", 1
    while fs.exists(f"{base}/{EVALUATIONS}/{name}.json"):
        n += 1
        name = f"{stamp}-{result.get('split', 'split')}-{n}"
    path = f"{base}/{EVALUATIONS}/{name}.json"
    with fs.open(path, "wb") as f:
        f.write((json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return f"{model_uri.rstrip('/')}/{EVALUATIONS}/{name}.json"
