"""Support for the ranking-service tests, on top of the model tests' tiny artifact.

``tests.unit._model_support`` trains one tiny artifact per test process with the real
trainer (``rankops train`` code path); the service tests serve that same artifact.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

from tests.unit._model_support import tiny_artifact, tiny_dataset


def artifact() -> Path:
    """The tiny trained artifact (never modify it: copy it with ``artifact_copy``)."""
    return tiny_artifact()


@functools.cache
def artifact_version() -> str:
    return str(json.loads((artifact() / "manifest.json").read_text(encoding="utf-8"))["version"])


def artifact_copy(dest: Path) -> Path:
    shutil.copytree(artifact(), dest)
    return dest


def dataset_queries() -> list[str]:
    lines = (tiny_dataset() / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]
