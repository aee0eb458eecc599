"""Rendering the Helm chart with the Helm SDK (helm-python-sdk: Helm's Go library, no binary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "rankops"
ALL_OPTIONS = CHART / "ci" / "all-options-values.yaml"
NAMESPACED = CHART / "ci" / "namespaced-values.yaml"
RELEASE, NAMESPACE = "rankops", "rankops-system"
# The newest Kubernetes the schemas in kubernetes-validate cover.
KUBE_VERSION = "1.37.0"


def values_file(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return values


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's templates rendered as an install would (NOTES.txt left out), as objects."""
    import helm_python as helm

    helm.disable_logging()
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values or {})
        manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def notes(values: dict[str, Any] | None = None) -> str:
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return next(text for name, text in manifests.items() if name.endswith("NOTES.txt"))


def chart_crds() -> dict[str, str]:
    """The CRD files as Helm loads them from the chart (file name -> text)."""
    import helm_python as helm

    with helm.Chart.load(CHART) as chart:
        return {Path(crd["filename"]).name: crd["data"] for crd in chart.crds}


def rbac_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every PolicyRule of the chart's Roles and ClusterRoles."""
    return [rule for obj in objects if obj["kind"] in ("Role", "ClusterRole") for rule in obj["rules"]]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(object name, pod spec) of every workload the chart renders."""
    out = []
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj["kind"] == "Pod":
            out.append((obj["metadata"]["name"], spec))
        elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            out.append((obj["metadata"]["name"], spec["template"]["spec"]))
        elif obj["kind"] == "CronJob":
            out.append((obj["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]))
    return out


def rbac_render_rules(values: dict[str, Any]) -> dict[str, Any]:
    """The rules an install grants its ServiceAccount: ``cluster`` (ClusterRoles bound by
    ClusterRoleBindings) and ``namespaces`` (namespace -> rules of Roles bound there)."""
    objects = render(values)
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    cluster: list[dict[str, Any]] = []
    namespaces: dict[str, list[dict[str, Any]]] = {}
    for binding in objects:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        ref = binding["roleRef"]
        ns = binding["metadata"].get("namespace")
        role = roles[(ref["kind"], None if ref["kind"] == "ClusterRole" else ns, ref["name"])]
        if binding["kind"] == "ClusterRoleBinding":
            cluster += role["rules"]
        else:
            namespaces.setdefault(ns, []).extend(role["rules"])
    return {"cluster": cluster, "namespaces": namespaces}
