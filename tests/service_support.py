"""Support for the ranking-service tests: one tiny trained artifact per test process.

The dataset comes from the bundled generator (run as a script) at a small size, and the
artifact from the real trainer (``rankops.serving.train.train_command``), so the service is
tested against exactly what ``rankops train`` writes.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "examples" / "data" / "generate_datasets.py"
ITEMS = 240
QUERIES = 160


@functools.cache
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rankops-service-tests-"))


@functools.cache
def dataset() -> Path:
    out = workdir() / "data"
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            "--out",
            str(out),
            "--seed",
            "5",
            "--items",
            str(ITEMS),
            "--queries",
            str(QUERIES),
        ],
        check=True,
        capture_output=True,
    )
    return out


@functools.cache
def artifact() -> Path:
    """A tiny trained artifact (never modify it: copy it with ``artifact_copy``)."""
    from rankops.serving.train import train_command

    out = workdir() / "model"
    train_command(str(dataset()), str(out), "0.3.0", epochs=3, seed=3, stream=io.StringIO())
    return out


def artifact_copy(dest: Path) -> Path:
    shutil.copytree(artifact(), dest)
    return dest


def dataset_queries() -> list[str]:
    import json

    lines = (dataset() / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]
