"""The Flux healthCheckExprs (CEL) in gitops/flux/kustomization.yaml on the Argo CD samples.

Evaluated with cel-python in Flux's order (inProgress, failed, current; an expression that
errors, e.g. on a missing status, leaves the resource in progress) and compared with the
Argo CD verdict of the same sample: Healthy -> Current, Degraded -> Failed, Progressing and
Suspended -> InProgress. MaintenanceWindow is left out on purpose: its chores are not a
deployment Flux should wait on, so its expressions differ (checked separately).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

celpy = pytest.importorskip("celpy")

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "gitops" / "argocd" / "resource_customizations" / "rankops.dev"
FLUX = {"Healthy": "Current", "Degraded": "Failed", "Progressing": "InProgress", "Suspended": "InProgress"}


def exprs() -> dict[str, dict[str, str]]:
    doc = yaml.safe_load((ROOT / "gitops" / "flux" / "kustomization.yaml").read_text())
    return {e["kind"]: e for e in doc["spec"]["healthCheckExprs"]}


def flux_status(kind: str, obj: dict[str, Any]) -> str:
    from celpy.adapter import json_to_cel

    env = celpy.Environment()
    activation = {key: json_to_cel(value) for key, value in obj.items()}
    for field, verdict in (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current")):
        try:
            result = env.program(env.compile(exprs()[kind][field])).evaluate(activation)
        except Exception:
            return "InProgress"
        if isinstance(result, Exception):
            return "InProgress"
        if bool(result):
            return verdict
    return "InProgress"


def samples(kind: str) -> list[Any]:
    spec = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())
    return [pytest.param(t, id=Path(t["inputPath"]).stem) for t in spec["tests"]]


@pytest.mark.parametrize("kind", ["RankingModel", "QualitySLO"])
def test_flux_agrees_with_argo_cd(kind: str) -> None:
    for param in samples(kind):
        test = param.values[0]
        obj = yaml.safe_load((CHECKS / kind / test["inputPath"]).read_text())
        assert flux_status(kind, obj) == FLUX[test["healthStatus"]["status"]], (kind, test["inputPath"])


def test_maintenance_window_fails_only_on_degraded() -> None:
    for param in samples("MaintenanceWindow"):
        test = param.values[0]
        obj = yaml.safe_load((CHECKS / "MaintenanceWindow" / test["inputPath"]).read_text())
        degraded_condition = any(
            c["type"] == "Degraded" and c["status"] == "True"
            for c in (obj.get("status") or {}).get("conditions") or []
        )
        expected = "Failed" if degraded_condition else ("InProgress" if "status" not in obj else "Current")
        assert flux_status("MaintenanceWindow", obj) == expected, test["inputPath"]
