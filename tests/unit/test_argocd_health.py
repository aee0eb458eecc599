"""Argo CD health checks (Lua) of the three resources, run with lupa on Argo CD's test layout.

``gitops/argocd/resource_customizations/rankops.dev/<Kind>/`` has ``health.lua``,
``health_test.yaml`` and ``testdata/`` exactly as Argo CD's own repository lays out its
built-in checks. Each sample status is run through the Lua (Lua 5.1, the dialect of Argo CD's
gopher-lua) and must give the expected status and message; each sample must also be a valid
object of its CRD from ``crds/`` (with no field pruned), so the checks read real fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rankops.sandbox.schema import validate_custom_resource

lupa = pytest.importorskip("lupa")

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "gitops" / "argocd" / "resource_customizations" / "rankops.dev"
KINDS = ("RankingModel", "QualitySLO", "MaintenanceWindow")
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def crd_for(kind: str) -> dict[str, Any]:
    for path in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return dict(crd)
    raise AssertionError(f"no CRD for {kind}")


def lua_runtime() -> Any:
    import lupa.lua51  # Argo CD runs Lua 5.1 (gopher-lua)

    return lupa.lua51.LuaRuntime(unpack_returned_tuples=True)


def run_health(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    lua = lua_runtime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    script = (CHECKS / kind / "health.lua").read_text()
    result = lua.execute(script)
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


def cases() -> list[Any]:
    out = []
    for kind in KINDS:
        spec = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())
        for test in spec["tests"]:
            out.append(pytest.param(kind, test, id=f"{kind}-{Path(test['inputPath']).stem}"))
    return out


@pytest.mark.parametrize(("kind", "test"), cases())
def test_health(kind: str, test: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECKS / kind / test["inputPath"]).read_text())
    assert run_health(kind, obj) == test["healthStatus"]


@pytest.mark.parametrize(("kind", "test"), cases())
def test_samples_are_valid_objects_of_their_crd(kind: str, test: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECKS / kind / test["inputPath"]).read_text())
    pruned: list[str] = []
    _, errors = validate_custom_resource(crd_for(kind), obj, unknown_fields=pruned)
    assert not errors, [str(e) for e in errors]
    assert not pruned, f"fields the CRD does not know: {pruned}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_mapped_status_is_argo_cds_and_covered(kind: str) -> None:
    spec = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())
    statuses = {t["healthStatus"]["status"] for t in spec["tests"]}
    assert statuses <= ARGO_STATUSES
    wanted = {"Healthy", "Progressing", "Degraded"} | ({"Suspended"} if kind != "QualitySLO" else set())
    assert wanted <= statuses, f"{kind}: no sample for {wanted - statuses}"


def test_every_rankingmodel_phase_has_a_sample() -> None:
    crd = crd_for("RankingModel")
    phases = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"][
        "phase"
    ]
    spec = yaml.safe_load((CHECKS / "RankingModel" / "health_test.yaml").read_text())
    seen = {
        (yaml.safe_load((CHECKS / "RankingModel" / t["inputPath"]).read_text()).get("status") or {}).get(
            "phase"
        )
        for t in spec["tests"]
    }
    assert set(phases["enum"]) <= seen


def test_argocd_cm_snippet_matches_the_checks() -> None:
    """The argocd-cm patch holds the Lua files verbatim (regenerate: gitops/argocd/render_argocd_cm.py)."""
    snippet = (ROOT / "gitops" / "argocd" / "argocd-cm.yaml").read_text()
    data = yaml.safe_load(snippet)["data"]
    for kind in KINDS:
        assert (
            data[f"resource.customizations.health.rankops.dev_{kind}"]
            == (CHECKS / kind / "health.lua").read_text()
        )
