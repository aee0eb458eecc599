"""`rankops slo rules NAME`: from a manifest or the API, a rule file promtool accepts; clear errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rankops.cli.main import main
from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.harness import crd_manifests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "qualityslo.yaml"


def _rules(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["slo", "rules", *argv]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Alerting rules of QualitySLO")
    doc: dict[str, Any] = yaml.safe_load(out)
    return doc


def test_rules_from_the_example_manifest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = _rules(capsys, "search-quality", "-f", str(EXAMPLE), "--model", "search-ranker")
    (group,) = doc["groups"]
    assert group["name"] == "rankops-default-search-quality"
    severities = [r["labels"]["severity"] for r in group["rules"] if r["labels"]["objective"] == "ndcg"]
    assert severities == ["breach", "P0", "P1", "P2"]
    assert all('model=~"search-ranker"' in r["expr"] for r in group["rules"])
    promtool = shutil.which("promtool")
    if promtool:
        path = tmp_path / "rules.yaml"
        path.write_text(yaml.safe_dump(doc))
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_bad_input_exits_non_zero_with_a_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["slo", "rules", "nope", "-f", str(EXAMPLE)]) == 2
    assert "no QualitySLO named 'nope' (found: search-quality)" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: QualitySLO\nmetadata: {name: q}\nspec:\n  objectives: [{name: x, metric: error_rate}]\n"
    )
    assert main(["slo", "rules", "q", "-f", str(bad)]) == 2
    assert "spec.objectives[0].target" in capsys.readouterr().err
    bad.write_text("kind: QualitySLO\nmetadata: {name: q}\nspec: {objectives: []}\n")
    assert main(["slo", "rules", "q", "-f", str(bad)]) == 2
    assert "spec.objectives" in capsys.readouterr().err


def test_rules_from_the_api_cover_the_models_using_the_slo(capsys: pytest.CaptureFixture[str]) -> None:
    slo = yaml.safe_load(EXAMPLE.read_text())
    model: dict[str, Any] = {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": "ranker-a", "namespace": "default"},
        "spec": {
            "model": {"version": "1.0.0", "uri": "file:///m/1"},
            "serving": {"image": "img"},
            "rollout": {"analysis": {"sloRef": {"name": "search-quality"}}},
        },
    }
    other = {
        **model,
        "metadata": {"name": "unrelated", "namespace": "default"},
        "spec": {**model["spec"], "rollout": {}},
    }
    with SandboxAPIServer.in_thread(crds=crd_manifests()) as api:
        api.create(slo)
        api.create(model)
        api.create(other)
        doc = _rules(capsys, "search-quality", "--apiserver", api.url)
        assert main(["slo", "rules", "missing", "--apiserver", api.url]) == 2
        assert "QualitySLO default/missing not found" in capsys.readouterr().err
    exprs = [r["expr"] for r in doc["groups"][0]["rules"]]
    assert exprs and all('model=~"ranker-a"' in e for e in exprs)
