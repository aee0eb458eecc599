"""Gateway API routing with the real operator: the HTTPRoute's backendRef weights follow the
steps, replica counts follow the core's gateway split (the stable track keeps its capacity),
and a switch back to replica-ratio routing deletes the route the model owned (only that one).

Histories come from the emulator's watch log (``object_history``), so states that last only
a moment (the 100 % step before the promotion) are checked too, without timing assumptions.
"""

from __future__ import annotations

from typing import Any

import pytest

from rankops.operator.core.routing import gateway_split
from tests.integration.conftest import (
    NAMESPACE,
    deploy_healthy,
    get_model,
    object_history,
    quality_slo,
    start_rollout,
    wait_events,
    wait_healthy_at,
    wait_rolled_back,
    wait_status,
)
from tests.integration.harness import wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]

ROUTES = f"/apis/gateway.networking.k8s.io/v1/namespaces/{NAMESPACE}/httproutes"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
STEPS = [{"weight": 10}, {"weight": 50}, {"weight": 100}]
REPLICAS = 2


def _gateway(name: str) -> dict[str, Any]:
    return {"gatewayAPI": {"httpRoute": f"{name}-route"}}


def _deploy_with_gateway(api: Any, name: str) -> None:
    deploy_healthy(api, name, steps=STEPS, replicas=REPLICAS, traffic_routing=_gateway(name))


def _weights(route: dict[str, Any], name: str) -> tuple[int, int]:
    """(stable, canary) weights of the route's single rule."""
    (rule,) = route["spec"]["rules"]
    refs = {ref["name"]: ref for ref in rule["backendRefs"]}
    assert set(refs) <= {f"{name}-stable", f"{name}-canary"}, refs
    for ref in refs.values():
        assert ref["kind"] == "Service" and ref["port"] == 8080
    return refs[f"{name}-stable"]["weight"], refs.get(f"{name}-canary", {}).get("weight", 0)


def _dedup(values: list[Any]) -> list[Any]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def _route_weights(api: Any, name: str) -> list[tuple[int, int]]:
    history = object_history(api, ROUTES, f"{name}-route")
    return _dedup([_weights(obj, name) for kind, obj in history if kind != "DELETED"])


def _replicas(api: Any, deployment: str) -> list[int]:
    history = object_history(api, DEPLOYMENTS, deployment)
    return _dedup([obj["spec"]["replicas"] for kind, obj in history if kind != "DELETED"])


def _ready_with(deployment: dict[str, Any], version: str) -> bool:
    """The Deployment runs ``version`` and reports its current template ready (the kubelet stand-in)."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    status = deployment.get("status") or {}
    replicas = deployment["spec"]["replicas"]
    return (
        labels["rankops.dev/version"] == version
        and status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("readyReplicas", 0) >= replicas
        and status.get("updatedReplicas", 0) >= replicas
    )


def _timeline(api: Any, name: str) -> list[tuple[str, dict[str, Any]]]:
    """The route's and both Deployments' versions, as (object name, object), in the API server's order.

    The emulator's resourceVersion is one cluster-wide counter, so it orders writes to different objects.
    """
    merged = [
        (obj["metadata"]["name"], obj)
        for collection, obj_name in (
            (ROUTES, f"{name}-route"),
            (DEPLOYMENTS, f"{name}-stable"),
            (DEPLOYMENTS, f"{name}-canary"),
        )
        for kind, obj in object_history(api, collection, obj_name)
        if kind != "DELETED"
    ]
    return sorted(merged, key=lambda item: int(item[1]["metadata"]["resourceVersion"]))


def _is_subsequence(part: list[Any], whole: list[Any]) -> bool:
    it = iter(whole)
    return all(any(p == w for w in it) for p in part)


def test_route_weights_follow_the_steps_and_promotion(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    api.create(quality_slo())
    operator()
    _deploy_with_gateway(api, model_name)
    start_rollout(api, model_name, "1.1.0")
    status = wait_healthy_at(api, model_name, "1.1.0", 45, "promotion of 1.1.0")
    assert status["canaryWeight"] == 0
    wait_events(api, model_name, "Promoted")

    weights = _route_weights(api, model_name)
    assert weights == [(100, 0), (90, 10), (50, 50), (0, 100), (100, 0)], weights
    route = api.get_object("httproutes", f"{model_name}-route", NAMESPACE)
    uid = get_model(api, model_name)["metadata"]["uid"]
    assert [ref["uid"] for ref in route["metadata"]["ownerReferences"]] == [uid]

    # Replica counts do not follow the weight as with replica-ratio routing: the stable track
    # keeps full capacity throughout, the canary gets the core's gateway split per step.
    assert _replicas(api, f"{model_name}-stable") == [REPLICAS]
    canary = _replicas(api, f"{model_name}-canary")
    per_step = _dedup([gateway_split(step["weight"], REPLICAS).canary for step in STEPS])
    assert canary[0] == 0 and canary[-1] == 0, canary
    assert _is_subsequence(per_step, canary), (per_step, canary)
    wait_for(
        lambda: api.get_object("deployments", f"{model_name}-canary", NAMESPACE)["spec"]["replicas"] == 0,
        10,
        0.1,
        "the canary track to be scaled down after the route switch",
    )
    wait_events(api, model_name, "StableReady")

    # Promotion: the route keeps all traffic on the canary track (serving 1.1.0 at full size) until
    # the stable Deployment reports ready with 1.1.0; only then does it switch to the stable track,
    # and only after the switch is the canary scaled down.
    timeline = _timeline(api, model_name)
    route_name, stable_name, canary_name = (f"{model_name}-{s}" for s in ("route", "stable", "canary"))
    promoted_at = next(
        i
        for i, (n, obj) in enumerate(timeline)
        if n == stable_name
        and obj["spec"]["template"]["metadata"]["labels"]["rankops.dev/version"] == "1.1.0"
    )
    switched_at = next(
        i
        for i, (n, obj) in enumerate(timeline)
        if i > promoted_at and n == route_name and _weights(obj, model_name) == (100, 0)
    )
    stable_ready_at = next(
        i for i, (n, obj) in enumerate(timeline) if n == stable_name and _ready_with(obj, "1.1.0")
    )
    assert promoted_at < stable_ready_at < switched_at, (promoted_at, stable_ready_at, switched_at)
    between = [_weights(obj, model_name) for n, obj in timeline[promoted_at:switched_at] if n == route_name]
    assert set(between) <= {(0, 100)}, between
    # The canary kept its full size (and the promoted version) until the route had switched.
    for n, obj in timeline[promoted_at:switched_at]:
        if n == canary_name:
            assert obj["spec"]["replicas"] == REPLICAS, obj["spec"]
            assert obj["spec"]["template"]["metadata"]["labels"]["rankops.dev/version"] == "1.1.0"
    scaled_down_at = next(
        i
        for i, (n, obj) in enumerate(timeline)
        if n == canary_name and i > promoted_at and obj["spec"]["replicas"] == 0
    )
    assert scaled_down_at > switched_at, (switched_at, scaled_down_at)
    assert api.get_object("deployments", f"{model_name}-canary", NAMESPACE)["spec"]["replicas"] == 0


def test_rollback_sets_the_canary_weight_to_zero(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    api.create(quality_slo())
    stack.use(model_name, "1.0.0", "1.1.0", stable_mean=0.8, canary_mean=0.5)
    operator()
    _deploy_with_gateway(api, model_name)
    start_rollout(api, model_name, "1.1.0")
    status = wait_rolled_back(api, model_name)
    assert status["stableVersion"] == "1.0.0" and status["canaryWeight"] == 0
    wait_events(api, model_name, "RolledBack")
    assert _route_weights(api, model_name) == [(100, 0), (90, 10), (100, 0)]
    assert _replicas(api, f"{model_name}-stable") == [REPLICAS]
    # No drain behind a route (the stable track kept full capacity), and the route takes the traffic
    # off the canary before the canary's pods are scaled down.
    timeline = _timeline(api, model_name)
    route_name, canary_name = f"{model_name}-route", f"{model_name}-canary"
    at_10 = next(
        i for i, (n, o) in enumerate(timeline) if n == route_name and _weights(o, model_name) == (90, 10)
    )
    back_at = next(
        i
        for i, (n, o) in enumerate(timeline)
        if i > at_10 and n == route_name and _weights(o, model_name) == (100, 0)
    )
    scaled_down_at = next(
        i
        for i, (n, o) in enumerate(timeline)
        if i > at_10 and n == canary_name and o["spec"]["replicas"] == 0
    )
    assert back_at < scaled_down_at, (back_at, scaled_down_at)
    assert api.get_object("deployments", f"{model_name}-canary", NAMESPACE)["spec"]["replicas"] == 0


def test_switch_to_replica_ratio_deletes_the_owned_route(api: Any, operator: Any, model_name: str) -> None:
    from tests.integration.harness import free_port

    operator(prometheus_url=f"http://127.0.0.1:{free_port()}")  # no rollout: no metrics needed
    _deploy_with_gateway(api, model_name)
    route_name = f"{model_name}-route"
    assert api.get_object("httproutes", route_name, NAMESPACE) is not None
    # A route that merely looks like ours (same labels, no owner reference) must survive.
    lookalike = api.create(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {
                "name": f"{model_name}-by-hand",
                "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/name": model_name, "app.kubernetes.io/managed-by": "rankops"},
            },
            "spec": {"rules": [{"backendRefs": [{"name": f"{model_name}-stable", "port": 8080}]}]},
        }
    )

    model = get_model(api, model_name)
    del model["spec"]["rollout"]["trafficRouting"]
    api.apply_object(model)
    wait_for(
        lambda: api.get_object("httproutes", route_name, NAMESPACE) is None,
        20,
        0.1,
        f"HTTPRoute {route_name} to be deleted after the switch to replicaRatio",
    )
    kept = api.get_object("httproutes", f"{model_name}-by-hand", NAMESPACE)
    assert kept is not None and kept["metadata"]["uid"] == lookalike["metadata"]["uid"]
    status = wait_status(
        api, model_name, lambda s: s.get("observedGeneration") == 2, 20, "the new generation observed"
    )
    assert status["phase"] == "Healthy"
