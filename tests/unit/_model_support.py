"""Shared helpers for the model tests: a tiny generated dataset and one tiny trained artifact
per test process (training once keeps the suite fast)."""

from __future__ import annotations

import functools
import importlib.util
import io
import sys
import tempfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "examples" / "data" / "datasets"
TINY_ITEMS = 240
TINY_QUERIES = 160


@functools.cache
def generator() -> ModuleType:
    path = REPO / "examples" / "data" / "generate_datasets.py"
    spec = importlib.util.spec_from_file_location("generate_datasets", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rankops-model-tests-"))


@functools.cache
def tiny_dataset() -> Path:
    out = _workdir() / "tiny-data"
    generator().write(out, seed=5, n_items=TINY_ITEMS, n_queries=TINY_QUERIES)
    return out


@functools.cache
def tiny_artifact() -> Path:
    from rankops.serving.training_run import train_command

    out = _workdir() / "tiny-model"
    log = io.StringIO()
    train_command(str(tiny_dataset()), str(out), "0.1.0", epochs=10, seed=3, batch_size=8, stream=log)
    (out.parent / "tiny-model.log").write_text(log.getvalue())
    return out


@functools.cache
def bundled_artifact() -> Path:
    """The model trained on the whole bundled dataset (default options), once per process."""
    from rankops.serving.training_run import train_command

    out = _workdir() / "bundled-model"
    train_command(str(BUNDLED), str(out), "1.0.0", stream=io.StringIO())
    return out
