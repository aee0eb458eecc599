"""Child objects of a RankingModel and the no-write diff."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankops.operator.core.children import (
    TrackPlan,
    build_children,
    build_deployment,
    build_httproute,
    track_replicas,
)
from rankops.operator.core.diff import needs_update, parse_quantity, quantities_equal
from rankops.operator.core.rollout import RolloutState
from rankops.operator.core.spec import RankingModelSpec, parse_ranking_model_spec

META = {"name": "ranker", "namespace": "search", "uid": "1234-abcd"}
SPEC: dict[str, Any] = {
    "model": {"version": "1.1.0", "uri": "file:///models/1.1.0"},
    "serving": {
        "image": "serving:1",
        "replicas": 4,
        "port": 9000,
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "resources": {"requests": {"cpu": "500m"}},
    },
    "rollout": {"steps": [{"weight": 25}, {"weight": 100}]},
}
HEALTHY = {
    "phase": "Healthy",
    "stableVersion": "1.0.0",
    "stableUri": "file:///models/1.0.0",
    "canaryWeight": 0,
}
ROLLING = {
    **HEALTHY,
    "phase": "Progressing",
    "canaryVersion": "1.1.0",
    "canaryUri": "file:///models/1.1.0",
    "canaryWeight": 25,
    "currentStep": 0,
}


def parsed(spec: dict[str, Any]) -> RankingModelSpec:
    return parse_ranking_model_spec(spec)


def children_of(meta: dict[str, Any], spec: dict[str, Any], status: dict[str, Any]) -> list[dict[str, Any]]:
    """The children for a status as the API holds it (read into the typed state at the edge)."""
    return build_children(meta, parsed(spec), RolloutState.from_status(status))


def tracks(spec: dict[str, Any], status: dict[str, Any]) -> TrackPlan:
    return track_replicas(parsed(spec), RolloutState.from_status(status))


def by_name(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{c['kind']}/{c['metadata']['name']}": c for c in children}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_children_names_and_order() -> None:
    children = children_of(META, SPEC, HEALTHY)
    assert [f"{c['kind']}/{c['metadata']['name']}" for c in children] == [
        "Deployment/ranker-stable",
        "Deployment/ranker-canary",
        "Service/ranker",
        "Service/ranker-stable",
        "Service/ranker-canary",
    ]
    for child in children:
        assert child["metadata"]["namespace"] == "search"
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "rankops.dev/v1alpha1",
            "kind": "RankingModel",
            "name": "ranker",
            "uid": "1234-abcd",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ranker"
        assert labels["app.kubernetes.io/managed-by"] == "rankops"


def test_healthy_model_runs_stable_only() -> None:
    c = by_name(children_of(META, SPEC, HEALTHY))
    stable, canary = c["Deployment/ranker-stable"], c["Deployment/ranker-canary"]
    assert stable["spec"]["replicas"] == 4 and canary["spec"]["replicas"] == 0
    assert env_of(stable) == {
        "RANKOPS_MODEL": "ranker",
        "RANKOPS_VERSION": "1.0.0",
        "RANKOPS_TRACK": "stable",
        "RANKOPS_MODEL_URI": "file:///models/1.0.0",
        "RANKOPS_PORT": "9000",
        "LOG_LEVEL": "debug",
    }
    assert env_of(canary)["RANKOPS_TRACK"] == "canary"
    assert env_of(canary)["RANKOPS_VERSION"] == "1.0.0"  # idle canary carries the stable template
    assert stable["metadata"]["labels"]["rankops.dev/version"] == "1.0.0"
    assert stable["metadata"]["labels"]["rankops.dev/track"] == "stable"


def test_rolling_model_splits_replicas_and_versions() -> None:
    c = by_name(children_of(META, SPEC, ROLLING))
    stable, canary = c["Deployment/ranker-stable"], c["Deployment/ranker-canary"]
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (3, 1)
    assert env_of(canary)["RANKOPS_VERSION"] == "1.1.0"
    assert env_of(canary)["RANKOPS_MODEL_URI"] == "file:///models/1.1.0"
    assert canary["spec"]["template"]["metadata"]["labels"]["rankops.dev/version"] == "1.1.0"
    assert c["Service/ranker-canary"]["metadata"]["labels"]["rankops.dev/version"] == "1.1.0"


def test_selectors_do_not_depend_on_version() -> None:
    a = by_name(children_of(META, SPEC, HEALTHY))
    b = by_name(children_of(META, SPEC, ROLLING))
    for name in ("Deployment/ranker-stable", "Deployment/ranker-canary"):
        assert a[name]["spec"]["selector"] == b[name]["spec"]["selector"]
        assert a[name]["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": "ranker",
            "rankops.dev/track": name.split("-")[-1],
        }
    assert a["Service/ranker"]["spec"]["selector"] == {"app.kubernetes.io/name": "ranker"}
    assert a["Service/ranker-canary"]["spec"]["selector"] == {
        "app.kubernetes.io/name": "ranker",
        "rankops.dev/track": "canary",
    }


def test_pod_security_restricted() -> None:
    d = build_deployment(META, parsed(SPEC), "stable", "1.0.0", "file:///m", 2)
    pod = d["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["resources"] == {"requests": {"cpu": "500m"}}
    annotations = d["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9000"


def test_gateway_routing_builds_an_httproute() -> None:
    spec = copy.deepcopy(SPEC)
    spec["rollout"]["trafficRouting"] = {
        "gatewayAPI": {"httpRoute": "ranker-route", "gateway": "gw", "gatewayNamespace": "infra"}
    }
    c = by_name(children_of(META, spec, ROLLING))
    route = c["HTTPRoute/ranker-route"]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "infra"}
    ]
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"], r["port"]) for r in refs] == [
        ("ranker-stable", 75, 9000),
        ("ranker-canary", 25, 9000),
    ]
    # stable keeps full capacity behind a route
    assert c["Deployment/ranker-stable"]["spec"]["replicas"] == 4
    assert c["Deployment/ranker-canary"]["spec"]["replicas"] == 1
    healthy = by_name(children_of(META, spec, HEALTHY))["HTTPRoute/ranker-route"]
    assert [r["weight"] for r in healthy["spec"]["rules"][0]["backendRefs"]] == [100, 0]


def test_route_without_gateway_leaves_parent_refs_alone() -> None:
    spec = copy.deepcopy(SPEC)
    spec["rollout"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "r"}}
    route = build_httproute(META, parsed(spec), 10)
    assert "parentRefs" not in route["spec"]
    actual = copy.deepcopy(route)
    actual["spec"]["parentRefs"] = [{"name": "someone-elses"}]
    assert not needs_update(route, actual)


def test_draining_canary_keeps_capacity() -> None:
    status = {"phase": "Healthy", "stableVersion": "1.1.0", "stableUri": "u", "canaryDraining": True}
    plan = tracks(SPEC, status)
    assert (plan.stable_replicas, plan.canary_replicas) == (4, 4)
    assert plan.canary_version == "1.1.0"


def test_gateway_draining_canary_keeps_the_route_share_and_route_order_follows_the_weight() -> None:
    spec = copy.deepcopy(SPEC)
    spec["rollout"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": "ranker-route"}}
    promoted = {**HEALTHY, "stableVersion": "1.1.0", "stableUri": "u", "canaryDraining": True}

    def kinds_and_weights(status: dict[str, Any]) -> tuple[list[str], list[int], int]:
        children = children_of(META, spec, status)
        (route,) = [c for c in children if c["kind"] == "HTTPRoute"]
        canary = by_name(children)["Deployment/ranker-canary"]["spec"]["replicas"]
        weights = [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]]
        return [c["kind"] for c in children], weights, canary

    # While the stable track rolls to the promoted version, the route keeps the canary's share.
    kinds, weights, canary = kinds_and_weights({**promoted, "canaryWeight": 100})
    assert weights == [0, 100] and canary == 4 and kinds[-1] == "HTTPRoute"
    assert tracks(spec, {**promoted, "canaryWeight": 100}).canary_version == "1.1.0"
    # Switched: the route goes first (traffic off the canary before its pods go).
    kinds, weights, canary = kinds_and_weights({**promoted, "canaryWeight": 0})
    assert weights == [100, 0] and canary == 4 and kinds[0] == "HTTPRoute"
    kinds, weights, canary = kinds_and_weights(HEALTHY)
    assert weights == [100, 0] and canary == 0 and kinds[0] == "HTTPRoute"
    # During a rollout the route goes last (after the canary Deployment is scaled for its share).
    kinds, weights, canary = kinds_and_weights(ROLLING)
    assert weights == [75, 25] and kinds[-1] == "HTTPRoute"
    # A leftover weight outside a rollout without draining is ignored.
    assert kinds_and_weights({**HEALTHY, "canaryWeight": 30})[1] == [100, 0]


def test_before_the_first_plan_the_spec_version_is_stable() -> None:
    plan = tracks(SPEC, {})
    assert plan.stable_version == "1.1.0" and plan.canary_replicas == 0


def test_builders_are_deterministic() -> None:
    assert children_of(META, SPEC, ROLLING) == children_of(META, copy.deepcopy(SPEC), dict(ROLLING))


def simulate_server_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """What an API server adds: metadata, defaults inside list items, status."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        uid="x", resourceVersion="7", generation=3, creationTimestamp="2026-01-01T00:00:00Z"
    )
    out["metadata"]["labels"]["added-by-someone"] = "yes"
    if out["kind"] == "Deployment":
        out["spec"]["strategy"] = {"type": "RollingUpdate"}
        pod = out["spec"]["template"]["spec"]
        pod["restartPolicy"] = "Always"
        container = pod["containers"][0]
        container["imagePullPolicy"] = "IfNotPresent"
        container["terminationMessagePath"] = "/dev/termination-log"
        container["readinessProbe"]["timeoutSeconds"] = 1
        out["status"] = {"replicas": 1}
    if out["kind"] == "Service":
        out["spec"]["clusterIP"] = "10.0.0.1"
        out["spec"]["sessionAffinity"] = "None"
    return out


def test_needs_update_ignores_server_defaults() -> None:
    for desired in children_of(META, SPEC, ROLLING):
        assert not needs_update(desired, simulate_server_defaults(desired))


def test_needs_update_sees_our_changes() -> None:
    desired = children_of(META, SPEC, ROLLING)
    actual = [simulate_server_defaults(d) for d in children_of(META, SPEC, HEALTHY)]
    changed = [d["metadata"]["name"] for d, a in zip(desired, actual, strict=True) if needs_update(d, a)]
    assert changed == ["ranker-stable", "ranker-canary", "ranker-canary"]  # replicas, template, version label


@given(
    path=st.sampled_from(
        [
            ("spec", "replicas"),
            ("metadata", "labels", "rankops.dev/version"),
            ("spec", "template", "spec", "containers", 0, "image"),
            ("spec", "template", "spec", "containers", 0, "securityContext", "readOnlyRootFilesystem"),
        ]
    ),
    value=st.one_of(st.integers(), st.text(max_size=5), st.booleans()),
)
def test_needs_update_detects_any_owned_field_change(path: tuple[Any, ...], value: Any) -> None:
    desired = build_deployment(META, parsed(SPEC), "canary", "1.1.0", "u", 2)
    actual = simulate_server_defaults(desired)
    node: Any = actual
    for key in path[:-1]:
        node = node[key]
    original = node[path[-1]]
    node[path[-1]] = value
    assert needs_update(desired, actual) == (not (value == original and type(value) is type(original)))


def test_needs_update_scalars() -> None:
    assert not needs_update({"a": 1}, {"a": 1.0})
    assert needs_update({"a": True}, {"a": 1})
    assert needs_update({"a": [1, 2]}, {"a": [1]})
    assert needs_update({"a": {"b": 1}}, {"a": "x"})
    assert needs_update({"a": 1}, {})


# --------------------------------------------------------------------------- quantities and omitempty


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1", Fraction(1)),
        (2, Fraction(2)),
        (0.25, Fraction(1, 4)),
        ("1Gi", Fraction(2**30)),
        ("1073741824", Fraction(2**30)),
        ("1.5Ki", Fraction(1536)),
        ("1k", Fraction(1000)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("2M", Fraction(2_000_000)),
        ("100u", Fraction(1, 10_000)),
        ("1n", Fraction(1, 10**9)),
        ("0.1n", Fraction(1, 10**9)),  # rounded up to nano, as the API server does
        ("-1", Fraction(-1)),
        ("+2k", Fraction(2000)),
    ],
)
def test_parse_quantity(text: str | int | float, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "m", "1.2.3", "1mi", "1 Gi", "abc", True, None, float("nan"), [1]])
def test_parse_quantity_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad)  # type: ignore[arg-type]


def test_quantities_equal() -> None:
    assert quantities_equal("0.5", "500m") and quantities_equal(1, "1000m")
    assert quantities_equal("1Gi", "1073741824") and quantities_equal("1024Mi", "1Gi")
    assert not quantities_equal("1G", "1Gi") and not quantities_equal("500m", "501m")
    assert quantities_equal("weird", "weird") and not quantities_equal("weird", "1")


def _with_resources(resources: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec["serving"]["resources"] = resources
    return build_deployment(META, parsed(spec), "stable", "1.0.0", "u", 4)


def _stored_resources(desired: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    actual = simulate_server_defaults(desired)
    actual["spec"]["template"]["spec"]["containers"][0]["resources"] = resources
    return actual


def test_needs_update_compares_resource_quantities_by_value() -> None:
    desired = _with_resources(
        {"requests": {"cpu": 0.5, "memory": "1073741824"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    )
    canonical = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    assert not needs_update(desired, _stored_resources(desired, canonical))
    changed = copy.deepcopy(canonical)
    changed["limits"]["memory"] = "2G"
    assert needs_update(desired, _stored_resources(desired, changed))
    missing = copy.deepcopy(canonical)
    del missing["requests"]["cpu"]
    assert needs_update(desired, _stored_resources(desired, missing))


def test_quantity_normalisation_only_where_quantities_live() -> None:
    assert needs_update(
        {"env": [{"name": "RATIO", "value": "0.5"}]}, {"env": [{"name": "RATIO", "value": "500m"}]}
    )
    assert needs_update({"image": "1"}, {"image": "1000m"})
    assert not needs_update({"emptyDir": {"sizeLimit": "1Gi"}}, {"emptyDir": {"sizeLimit": "1024Mi"}})


def test_needs_update_ignores_empty_values_the_server_drops() -> None:
    desired: dict[str, Any] = {
        "env": [{"name": "EMPTY", "value": ""}],
        "resources": {"limits": {}},
        "annotations": {},
        "args": [],
        "x": None,
        "emptyDir": {},
    }
    assert not needs_update(desired, {"env": [{"name": "EMPTY"}], "emptyDir": {}})
    assert needs_update({"emptyDir": {}}, {"emptyDir": "x"})
    assert needs_update({"env": [{"name": "A", "value": "1"}]}, {"env": [{"name": "A"}]})
    # an item removed from the desired list is still a change (a merge patch replaces lists)
    assert needs_update({"env": [{"name": "A"}]}, {"env": [{"name": "A"}, {"name": "B"}]})


_MULTIPLES = [
    ("", 10**9),
    ("m", 10**6),
    ("u", 10**3),
    ("n", 1),
    ("k", 10**12),
    ("Ki", 1024 * 10**9),
    ("Mi", 1024**2 * 10**9),
]


def _renderings(nanos: int) -> list[str | int]:
    """Every way to write ``nanos`` nano-units that the API server (or a user) might use."""
    out: list[str | int] = [
        f"{nanos}e-9",
        str(Fraction(nanos, 10**9).numerator) if nanos % 10**9 == 0 else f"{nanos / 10**9:.9f}",
    ]
    for suffix, unit in _MULTIPLES:
        if nanos % unit == 0:
            out.append(f"{nanos // unit}{suffix}")
    if nanos % 10**9 == 0:
        out.append(nanos // 10**9)
    return out


@given(
    base=st.integers(0, 10**6),
    scale=st.sampled_from([1, 10**3, 10**6, 10**9, 1024 * 10**9, 1024**2 * 10**9]),
    data=st.data(),
)
def test_equal_quantities_never_need_an_update(base: int, scale: int, data: st.DataObject) -> None:
    nanos = base * scale
    forms = _renderings(nanos)
    a, b = data.draw(st.sampled_from(forms)), data.draw(st.sampled_from(forms))
    desired = {"resources": {"requests": {"cpu": a}}}
    assert not needs_update(desired, {"resources": {"requests": {"cpu": b}}})
    # one nano-unit more is a real change
    assert needs_update(desired, {"resources": {"requests": {"cpu": f"{nanos + 1}n"}}})


def test_pods_append_to_the_feedback_log_the_retrain_reads() -> None:
    retrain = {"trainer": {"feedbackLog": "s3://feedback/search", "data": "s3://data", "outputUri": "s3://m"}}
    for track in ("stable", "canary"):
        deployment = by_name(children_of(META, {**SPEC, "retrain": retrain}, ROLLING))[
            f"Deployment/ranker-{track}"
        ]
        assert env_of(deployment)["RANKOPS_FEEDBACK_LOG"] == "s3://feedback/search"
    without = by_name(children_of(META, SPEC, HEALTHY))["Deployment/ranker-stable"]
    assert "RANKOPS_FEEDBACK_LOG" not in env_of(without)
