"""`rankops evaluate`: one JSON object on stdout, metrics for model and BM25."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rankops.cli.main import main

from ._model_support import generator, tiny_artifact, tiny_dataset


def test_evaluate_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "--model", str(tiny_artifact()), "--data", str(tiny_dataset()), "--split", "test"])
    assert rc == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["split"] == "test" and result["queries"] == 24 + len(generator().RUNBOOK_QUERIES)
    for who in ("model", "bm25"):
        assert set(result[who]) == {"ndcg@3", "ndcg@10", "mrr", "p@3"}
        assert all(0.0 <= v <= 1.0 for v in result[who].values())
    # the same numbers the trainer recorded in the manifest
    manifest = json.loads((tiny_artifact() / "manifest.json").read_text())
    assert result["model"]["ndcg@3"] == pytest.approx(
        manifest["metrics"]["test"]["model"]["ndcg@3"], abs=1e-6
    )
    assert "evaluating" in captured.err


def test_evaluate_refuses_a_tampered_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "m"
    shutil.copytree(tiny_artifact(), bad)
    (bad / "golden.jsonl").write_text("")
    rc = main(["evaluate", "--model", str(bad), "--data", str(tiny_dataset())])
    assert rc != 0
    assert "golden.jsonl" in capsys.readouterr().err


def test_evaluate_missing_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    shutil.copytree(tiny_dataset(), data)
    (data / "qrels" / "dev.tsv").unlink()
    rc = main(["evaluate", "--model", str(tiny_artifact()), "--data", str(data), "--split", "dev"])
    assert rc == 2
    assert "dev" in capsys.readouterr().err
