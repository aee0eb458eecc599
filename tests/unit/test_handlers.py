"""The operator shell without kopf: ``RankingModelController`` against the sandbox API server (in this loop),
an in-memory ``MetricsSource`` and a fake clock. kopf wiring is covered by tests/integration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from rankops.operator.adapters.kube import (
    ApiError,
    ForeignObject,
    KubeClient,
    connection_info,
    deployment_ready,
    resource_path,
)
from rankops.operator.adapters.prometheus import MetricsUnavailable
from rankops.operator.controllers.rankingmodel import RankingModelController
from rankops.operator.core.events import Event
from rankops.operator.core.verdict import TrackSummary
from rankops.operator.settings import OperatorConfig
from tests.integration.harness import crd_manifests
from tests.operator_support import StaticMetricsSource

NS = "default"
ROUTES = f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def good(n: float = 500, mean: float = 0.8, sd: float = 0.05) -> TrackSummary:
    # total and sum of squares of n samples with this mean and (sample) sd
    return TrackSummary(n=n, total=n * mean, squares_total=(n - 1) * sd * sd + n * mean * mean)


def model(name: str = "m", version: str = "1.0.0") -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"version": version, "uri": f"file:///models/{version}"},
            "serving": {"image": "rankops/serving:test", "replicas": 2},
            "rollout": {
                "steps": [{"weight": 50}, {"weight": 100}],
                "analysis": {"sloRef": {"name": "ndcg"}, "interval": "1s", "failureLimit": 1},
            },
        },
    }


SLO = {
    "apiVersion": "rankops.dev/v1alpha1",
    "kind": "QualitySLO",
    "metadata": {"name": "ndcg", "namespace": NS},
    "spec": {"objectives": [{"name": "ndcg", "metric": "ndcg_at_3", "window": "10s"}]},
}


class Harness:
    def __init__(self, api: Any) -> None:
        self.api = api
        self.clock = Clock()
        self.metrics = StaticMetricsSource()
        self.events: list[Event] = []
        self.kube = KubeClient(lambda: connection_info())
        self.reconciler = RankingModelController(
            self.kube, self.metrics, clock=self.clock, post_event=lambda obj, ev: self.events.append(ev)
        )

    async def reconcile(self, name: str = "m") -> Any:
        result = await self.reconciler.reconcile(NS, name)
        await self.api.settle()  # let the kubelet stand-in mark Deployments ready
        return result

    def status(self, name: str = "m") -> dict[str, Any]:
        return dict(self.api.get_object("rankingmodels", name, NS).get("status") or {})

    def set_version(self, version: str, name: str = "m") -> None:
        obj = self.api.get_object("rankingmodels", name, NS)
        obj["spec"]["model"].update(version=version, uri=f"file:///models/{version}")
        self.api.apply_object(obj)


@pytest.fixture
async def h(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    from rankops.sandbox.apiserver import SandboxAPIServer

    async with SandboxAPIServer(crds=crd_manifests(), simulate_workloads=True, workload_delay=0.0) as api:
        monkeypatch.setenv("RANKOPS_APISERVER_URL", api.url)
        harness = Harness(api)
        api.create(SLO)
        try:
            yield harness
        finally:
            await harness.kube.close()


async def healthy(h: Harness) -> None:
    h.api.create(model())
    await h.reconcile()
    await h.reconcile()
    assert h.status()["phase"] == "Healthy"


async def test_first_reconcile_creates_children_and_status(h: Harness) -> None:
    h.api.create(model())
    result = await h.reconcile()
    assert result.children_written == 5 and result.status_written
    names = sorted(d["metadata"]["name"] for d in h.api.list_objects("deployments", NS))
    assert names == ["m-canary", "m-stable"]
    assert sorted(s["metadata"]["name"] for s in h.api.list_objects("services", NS)) == [
        "m",
        "m-canary",
        "m-stable",
    ]
    status = h.status()
    assert status["stableVersion"] == "1.0.0" and status["observedGeneration"] == 1
    # The whole planned status is written, keys at their defaults included (canaryWeight 0, ...).
    assert status == result.plan.status and status["canaryWeight"] == 0


async def test_second_reconcile_without_changes_makes_no_writes(h: Harness) -> None:
    await healthy(h)
    writes_before = h.kube.writes
    for _ in range(3):
        h.clock.advance(5)
        result = await h.reconcile()
        assert result.children_written == 0 and not result.status_written
    assert h.kube.writes == writes_before


async def test_drifted_child_is_repaired_with_one_patch(h: Harness) -> None:
    await healthy(h)
    dep = h.api.get_object("deployments", "m-stable", NS)
    dep["spec"]["replicas"] = 7
    h.api.apply_object(dep)
    result = await h.reconcile()
    assert result.children_written == 1
    assert h.api.get_object("deployments", "m-stable", NS)["spec"]["replicas"] == 2


async def test_good_canary_is_promoted(h: Harness) -> None:
    await healthy(h)
    h.metrics.summaries = {("m", "stable", "1.0.0"): good(), ("m", "canary", "1.1.0"): good()}
    h.set_version("1.1.0")
    for _ in range(10):
        await h.reconcile()
        h.clock.advance(1.1)
        if h.status().get("stableVersion") == "1.1.0":
            break
    status = h.status()
    assert status["stableVersion"] == "1.1.0" and "canaryVersion" not in status
    reasons = [e.reason for e in h.events]
    assert reasons.count("Promoted") == 1 and "AnalysisPassed" in reasons


async def test_bad_canary_is_rolled_back_and_spec_untouched(h: Harness) -> None:
    await healthy(h)
    h.metrics.summaries = {("m", "stable", "1.0.0"): good(), ("m", "canary", "1.1.0"): good(mean=0.4)}
    h.set_version("1.1.0")
    for _ in range(5):
        await h.reconcile()
        h.clock.advance(1.1)
    status = h.status()
    assert status["phase"] == "RolledBack" and status["canaryWeight"] == 0
    assert status["lastAnalysis"]["reason"] == "BreachedFloor"
    assert h.api.get_object("rankingmodels", "m", NS)["spec"]["model"]["version"] == "1.1.0"
    assert h.api.get_object("deployments", "m-canary", NS)["spec"]["replicas"] == 0


async def test_metrics_unavailable_pauses(h: Harness) -> None:
    await healthy(h)
    h.metrics.error = MetricsUnavailable(
        "cannot connect to Prometheus at http://x: refused", cause="connection"
    )
    h.set_version("1.1.0")
    for _ in range(4):
        await h.reconcile()
        h.clock.advance(1.1)
    status = h.status()
    assert status["phase"] == "Paused" and status["pauseReason"] == "MetricsUnavailable"
    assert "cannot connect" in status["lastAnalysis"]["message"]


async def test_missing_slo_pauses_with_reason(h: Harness) -> None:
    await healthy(h)
    h.api.delete_object("qualityslos", "ndcg", NS)
    h.set_version("1.1.0")
    for _ in range(3):
        await h.reconcile()
        h.clock.advance(1.1)
    status = h.status()
    assert status["phase"] == "Paused" and status["lastAnalysis"]["reason"] == "SLONotFound"


async def test_missing_model_is_a_no_op(h: Harness) -> None:
    result = await h.reconcile("absent")
    assert result.plan is None and h.kube.writes == 0


async def test_status_goes_to_the_status_subresource(h: Harness) -> None:
    h.api.create(model())
    await h.reconcile()
    paths = [str(r.url.path) for r in list(h.api) if str(getattr(r.method, "value", r.method)) == "PATCH"]
    assert resource_path("RankingModel", NS, "m", "status") in paths


def gateway_model(route: str | None = "m-route") -> dict[str, Any]:
    obj = model()
    if route is not None:
        obj["spec"]["rollout"]["trafficRouting"] = {"gatewayAPI": {"httpRoute": route}}
    return obj


def http_route(
    name: str, owner_uid: str | None, *, controller: bool = True, model_name: str = "m"
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "labels": {"app.kubernetes.io/name": model_name, "app.kubernetes.io/managed-by": "rankops"},
    }
    if owner_uid is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "rankops.dev/v1alpha1",
                "kind": "RankingModel",
                "name": model_name,
                "uid": owner_uid,
                "controller": controller,
            }
        ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta,
        "spec": {"rules": [{"backendRefs": [{"name": "elsewhere", "port": 80}]}]},
    }


def route_weights(h: Harness, name: str = "m-route") -> dict[str, int]:
    route = h.api.get_object("httproutes", name, NS)
    assert route is not None, f"HTTPRoute {name} not found"
    refs = route["spec"]["rules"][0]["backendRefs"]
    return {ref["name"]: ref["weight"] for ref in refs}


def set_routing(h: Harness, routing: dict[str, Any] | None) -> None:
    obj = h.api.get_object("rankingmodels", "m", NS)
    if routing is None:
        obj["spec"]["rollout"].pop("trafficRouting", None)
    else:
        obj["spec"]["rollout"]["trafficRouting"] = routing
    h.api.apply_object(obj)


async def test_gateway_routing_creates_an_owned_route(h: Harness) -> None:
    h.api.create(gateway_model())
    result = await h.reconcile()
    assert result.children_written == 6
    assert route_weights(h) == {"m-stable": 100, "m-canary": 0}
    uid = h.api.get_object("rankingmodels", "m", NS)["metadata"]["uid"]
    route = h.api.get_object("httproutes", "m-route", NS)
    assert route["metadata"]["ownerReferences"][0]["uid"] == uid


async def test_switch_to_replica_ratio_deletes_only_our_route(h: Harness) -> None:
    h.api.create(gateway_model())
    await h.reconcile()
    uid = h.api.get_object("rankingmodels", "m", NS)["metadata"]["uid"]
    # Look-alikes we must not touch: our labels but no owner, another owner, another model's.
    h.api.create(http_route("users-route", None))
    h.api.create(http_route("other-owner", "0000-other-uid"))
    h.api.create(http_route("other-model", uid, model_name="n"))
    writes_before = h.kube.writes
    set_routing(h, None)
    result = await h.reconcile()
    assert h.api.get_object("httproutes", "m-route", NS) is None
    remaining = sorted(r["metadata"]["name"] for r in h.api.list_objects("httproutes", NS))
    assert remaining == ["other-model", "other-owner", "users-route"]
    assert result.children_written == 1 and h.kube.writes == writes_before + 2  # DELETE + status
    # Nothing left to prune: later reconciles neither write nor list again.
    h.clock.advance(5)
    requests_before = len(list(h.api))
    result = await h.reconcile()
    assert result.children_written == 0 and not result.status_written
    assert not any("httproutes" in str(r.url.path) for r in list(h.api)[requests_before:])


async def test_renamed_route_replaces_the_old_one(h: Harness) -> None:
    h.api.create(gateway_model("first"))
    await h.reconcile()
    set_routing(h, {"gatewayAPI": {"httpRoute": "second"}})
    await h.reconcile()
    assert [r["metadata"]["name"] for r in h.api.list_objects("httproutes", NS)] == ["second"]


async def test_stale_route_is_pruned_after_an_operator_restart(h: Harness) -> None:
    h.api.create(gateway_model())
    await h.reconcile()
    set_routing(h, None)
    # A fresh reconciler (operator restarted) sees the new spec first: it prunes too.
    fresh = RankingModelController(h.kube, h.metrics, clock=h.clock)
    await fresh.reconcile(NS, "m")
    assert h.api.list_objects("httproutes", NS) == []


async def test_prune_skips_kinds_the_server_does_not_serve(h: Harness) -> None:
    h.api["get", ROUTES] << 404  # no Gateway API installed
    h.api.create(model())
    result = await h.reconcile()
    assert result.children_written == 5 and result.status_written
    async with aiohttp.ClientSession() as session, session.get(f"{h.api.url}{ROUTES}") as response:
        assert response.status == 404  # the list prune made was answered 404 as well
    assert any(str(r.url.path) == ROUTES for r in list(h.api)), "prune did list HTTPRoutes"
    await h.reconcile()
    assert h.status()["phase"] == "Healthy"


async def test_gateway_routing_without_gateway_api_fails_clearly(h: Harness) -> None:
    h.api["post", ROUTES] << 404  # the Gateway API CRDs are not installed
    h.api.create(gateway_model())
    with pytest.raises(ApiError, match=r"is gateway.networking.k8s.io/v1 HTTPRoute served by this cluster"):
        await h.reconcile()


async def test_route_controlled_by_another_owner_is_not_taken_over(h: Harness) -> None:
    foreign = h.api.create(http_route("m-route", "0000-other-uid"))
    h.api.create(gateway_model())
    with pytest.raises(ForeignObject, match="controlled by RankingModel m"):
        await h.reconcile()
    route = h.api.get_object("httproutes", "m-route", NS)
    assert route["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]


async def test_route_without_a_controller_is_adopted(h: Harness) -> None:
    h.api.create(http_route("m-route", None))  # e.g. created by hand before the model
    h.api.create(gateway_model())
    await h.reconcile()
    uid = h.api.get_object("rankingmodels", "m", NS)["metadata"]["uid"]
    route = h.api.get_object("httproutes", "m-route", NS)
    assert route["metadata"]["ownerReferences"][0]["uid"] == uid
    assert route_weights(h) == {"m-stable": 100, "m-canary": 0}


def test_deployment_ready() -> None:
    dep = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2},
    }
    assert deployment_ready(dep)
    assert not deployment_ready(None)
    assert not deployment_ready({**dep, "status": {**dep["status"], "observedGeneration": 1}})
    assert not deployment_ready({**dep, "status": {**dep["status"], "readyReplicas": 1}})
    assert deployment_ready({"metadata": {}, "spec": {"replicas": 0}, "status": {}})
    # a rolling update half done: the new pods are ready but an old one still serves
    rolling = {**dep["status"], "replicas": 3}
    assert not deployment_ready({**dep, "status": rolling})


def test_config_from_env() -> None:
    config = OperatorConfig.from_env(
        {
            "RANKOPS_PROMETHEUS_URL": "http://p:9090",
            "RANKOPS_ANALYSIS_INTERVAL": "2s",
            "RANKOPS_EVENTS_LEVEL": "info",
        }
    )
    assert config.prometheus_url == "http://p:9090" and config.analysis_interval == 2.0
    assert config.events_level == 20
    with pytest.raises(ValueError, match="RANKOPS_RESYNC_INTERVAL"):
        OperatorConfig.from_env({"RANKOPS_RESYNC_INTERVAL": "soon"})
    with pytest.raises(ValueError, match="positive"):
        OperatorConfig.from_env({"RANKOPS_PROMETHEUS_TIMEOUT": "0"})


def test_connection_info_from_apiserver_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKOPS_APISERVER_URL", "http://127.0.0.1:1234")
    info = connection_info()
    assert info is not None and info.server == "http://127.0.0.1:1234"
