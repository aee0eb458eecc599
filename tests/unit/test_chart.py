"""The Helm chart: rendered and linted with the Helm SDK, validated against Kubernetes' schemas.

Three value sets: the defaults, every option on (``ci/all-options-values.yaml``) and a
namespaced install (``ci/namespaced-values.yaml``).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart_support import (
    ALL_OPTIONS,
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    NAMESPACED,
    ROOT,
    chart_crds,
    notes,
    pod_specs,
    rbac_rules,
    render,
    values_file,
)
from tests.pod_security import restricted_violations

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

VALUE_SETS = {
    "defaults": {},
    "all-options": values_file(ALL_OPTIONS),
    "namespaced": values_file(NAMESPACED),
}
# Kinds of other projects' CRDs: no schema in kubernetes-validate; checked on their own below.
FOREIGN_KINDS = {
    "monitoring.coreos.com/v1": {"PodMonitor", "ServiceMonitor", "PrometheusRule"},
    "cert-manager.io/v1": {"Certificate", "Issuer"},
    "kopf.dev/v1": {"ClusterKopfPeering", "KopfPeering"},
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(VALUE_SETS[request.param])


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_is_clean(name: str) -> None:
    report = helm.lint(
        CHART, VALUE_SETS[name], strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


def test_default_render_is_the_operator_alone() -> None:
    kinds = sorted(o["kind"] for o in render())
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"]


def test_all_options_render_every_object() -> None:
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in render(VALUE_SETS["all-options"]))
    assert kinds == [
        "ClusterKopfPeering/rankops",
        "ClusterRole/rankops",
        "ClusterRoleBinding/rankops",
        "ConfigMap/rankops-dashboard",
        "CustomResourceDefinition/clusterkopfpeerings.kopf.dev",
        "Deployment/rankops",
        "PodDisruptionBudget/rankops",
        "PodMonitor/rankops-serving",
        "PrometheusRule/rankops",
        "Secret/rankops-alert-receiver",
        "Secret/rankops-webhook-tls",
        "Service/rankops-alert-receiver",
        "Service/rankops-webhook",
        "ServiceAccount/rankops",
        "ServiceMonitor/rankops-serving",
        "ValidatingWebhookConfiguration/rankops",
    ]


def test_every_object_is_valid_for_kubernetes(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    checked = 0
    for obj in objects:
        if obj["kind"] in FOREIGN_KINDS.get(obj["apiVersion"], ()):
            continue
        # strict: unknown fields fail too (a typo in a template is not silently dropped)
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        checked += 1
    assert checked >= 4, name


def test_invalid_objects_are_caught_by_the_validation() -> None:
    deployment = by_kind(render(), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_chart_crds_are_the_repository_crds() -> None:
    """Helm installs exactly the files of crds/ (read now, not a snapshot)."""
    repo = {p.name: p.read_text() for p in sorted((ROOT / "crds").glob("*.yaml"))}
    assert chart_crds() == repo
    assert len(repo) == 3


def test_pod_security_restricted(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    specs = pod_specs(objects)
    assert specs, name
    for workload, spec in specs:
        assert restricted_violations(spec) == [], f"{name}: {workload}"
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert "limits" in container["resources"] and "requests" in container["resources"]


def test_pod_security_check_catches_violations() -> None:
    spec = pod_specs(render())[0][1]
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    violations = restricted_violations(spec)
    assert any("allowPrivilegeEscalation" in v for v in violations)
    assert any("NET_ADMIN" in v for v in violations)
    assert any("hostPath" in v for v in violations)


def test_probes_use_kopf_health_endpoint() -> None:
    container = by_kind(render(), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]


def test_rbac_has_no_wildcards_and_no_escalation(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    rules = rbac_rules(objects)
    assert rules, name
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in value for value in rule.get(field) or []), (name, rule)
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
        # Secrets: only `get` of the one a QualitySLO names for its notification URL; never list or
        # watch, which would hand the operator every Secret's contents.
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) == {"get"}, rule


def test_namespaced_install_grants_resources_only_in_its_namespaces() -> None:
    objects = render(VALUE_SETS["namespaced"])
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["search", "search-staging"]
    (cluster_role,) = by_kind(objects, "ClusterRole")
    # Cluster-wide: only kopf's own reads of namespaces and CRDs.
    assert {tuple(r["resources"]) for r in cluster_role["rules"]} == {
        ("namespaces",),
        ("customresourcedefinitions",),
    }
    assert all(set(r["verbs"]) == {"list", "watch"} for r in cluster_role["rules"])
    args = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=search" in args and "--all-namespaces" not in args


def test_high_availability_needs_two_replicas_and_peering() -> None:
    objects = render(VALUE_SETS["all-options"])
    deployment = by_kind(objects, "Deployment")[0]
    assert deployment["spec"]["replicas"] == 2
    assert "--peering=rankops" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    (pdb,) = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    import helm_python as helm_sdk

    with pytest.raises(helm_sdk.HelmError, match="highAvailability"):
        render({"replicaCount": 2})
    with pytest.raises(helm_sdk.HelmError, match="replicaCount"):
        render({"highAvailability": {"enabled": True}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 0}, "replicaCount"),
        ({"unknownOption": True}, "unknownOption"),
        ({"prometheus": {"url": "prometheus:9090"}}, "url"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"webhook": {"failurePolicy": "Sometimes"}}, "failurePolicy"),
    ],
)
def test_values_schema_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError, match=message):
        chart.validate_schema(values)


def test_alert_receiver_service_and_token() -> None:
    objects = render(VALUE_SETS["all-options"])
    secret = next(o for o in by_kind(objects, "Secret") if o["metadata"]["name"] == "rankops-alert-receiver")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert len(token) == 40 and token.isalnum()
    fixed = render({"alertReceiver": {"enabled": True, "token": "s3cret"}})
    assert base64.b64decode(by_kind(fixed, "Secret")[0]["data"]["token"]) == b"s3cret"
    service = next(
        o for o in by_kind(objects, "Service") if o["metadata"]["name"] == "rankops-alert-receiver"
    )
    assert service["spec"]["ports"][0]["targetPort"] == "alerts"
    pod = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]
    assert {"name": "RANKOPS_ALERTS_TOKEN_FILE", "value": "/etc/rankops/alerts/token"} in pod["containers"][
        0
    ]["env"]
    assert any(v.get("secret", {}).get("secretName") == "rankops-alert-receiver" for v in pod["volumes"])
    existing = render({"alertReceiver": {"enabled": True, "existingSecret": "mine"}})
    assert not by_kind(existing, "Secret")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_webhook_certificate_matches_its_service(tmp_path: Path) -> None:
    objects = render(VALUE_SETS["all-options"])
    secret = next(o for o in by_kind(objects, "Secret") if o["metadata"]["name"] == "rankops-webhook-tls")
    for key in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))

    def openssl(*args: str) -> str:
        done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "tls.crt: OK" in openssl("verify", "-CAfile", "ca.crt", "tls.crt")
    assert f"DNS:rankops-webhook.{NAMESPACE}.svc" in openssl(
        "x509", "-in", "tls.crt", "-noout", "-ext", "subjectAltName"
    )
    key_modulus = openssl("pkey", "-in", "tls.key", "-pubout")
    assert key_modulus == openssl("x509", "-in", "tls.crt", "-noout", "-pubkey")
    (config,) = by_kind(objects, "ValidatingWebhookConfiguration")
    assert {w["clientConfig"]["caBundle"] for w in config["webhooks"]} == {secret["data"]["ca.crt"]}
    assert {w["clientConfig"]["service"]["name"] for w in config["webhooks"]} == {"rankops-webhook"}
    managed = render(VALUE_SETS["namespaced"])
    (config,) = by_kind(managed, "ValidatingWebhookConfiguration")
    assert (
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/rankops-webhook"
    )
    (certificate,) = by_kind(managed, "Certificate")
    assert certificate["spec"]["issuerRef"] == {"name": "cluster-ca", "kind": "ClusterIssuer"}


def test_webhook_paths_name_the_operators_handlers_and_the_pod_serves_them() -> None:
    import kopf

    from rankops.operator import api
    from rankops.operator.handlers import WEBHOOK_PATH, register_admission

    registry = kopf.OperatorRegistry()
    register_admission(registry)
    handlers = {str(h.id) for h in registry._webhooks.get_all_handlers()}
    objects = render({"webhook": {"enabled": True}})
    (config,) = by_kind(objects, "ValidatingWebhookConfiguration")
    paths = {w["clientConfig"]["service"]["path"] for w in config["webhooks"]}
    assert paths == {f"{WEBHOOK_PATH}/{h}" for h in handlers}
    for hook in config["webhooks"]:
        (rule,) = hook["rules"]
        assert hook["clientConfig"]["service"]["path"] == f"{WEBHOOK_PATH}/{rule['resources'][0]}"
        assert rule["apiGroups"] == [api.GROUP] and rule["apiVersions"] == [api.VERSION]
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    (deployment,) = by_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RANKOPS_WEBHOOK_PORT"] == "9443"
    assert env["RANKOPS_WEBHOOK_CERT_DIR"] == "/etc/rankops/webhook"
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    (service,) = [o for o in by_kind(objects, "Service") if o["metadata"]["name"] == "rankops-webhook"]
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"


def test_monitors_select_each_serving_pod_once() -> None:
    from rankops.operator.api import LABEL_MANAGED_BY, LABEL_TRACK

    objects = render(VALUE_SETS["all-options"])
    for kind in ("PodMonitor", "ServiceMonitor"):
        (monitor,) = by_kind(objects, kind)
        selector = monitor["spec"]["selector"]
        assert selector["matchLabels"] == {LABEL_MANAGED_BY: "rankops"}
        assert selector["matchExpressions"] == [{"key": LABEL_TRACK, "operator": "Exists"}]
        endpoints = monitor["spec"].get("podMetricsEndpoints") or monitor["spec"]["endpoints"]
        assert endpoints[0]["port"] == "http" and endpoints[0]["path"] == "/metrics"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) not installed")
def test_prometheus_rules_pass_promtool(tmp_path: Path) -> None:
    (rule,) = by_kind(render(VALUE_SETS["all-options"]), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert r["labels"]["rankingmodel"] == "{{ $labels.model }}"


def test_grafana_dashboard_panels() -> None:
    (config_map,) = by_kind(render(VALUE_SETS["all-options"]), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["rankops.json"])
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for topic in ("NDCG@3 per track", "Canary weight", "Latency", "Drift", "Backup"):
        assert topic in titles
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in ("rankops_ndcg_at_3_sum", "rankops_request_duration_seconds_bucket", "rankops_drift_psi"):
        assert metric in exprs


def test_notes_name_the_release() -> None:
    text = notes(VALUE_SETS["all-options"])
    assert "kubectl rankops status" in text and "rankops-alert-receiver" in text
