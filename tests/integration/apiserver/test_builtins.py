"""Built-in resources and discovery, and the kubelet stand-in.

Checked against what a real API server answers (see ``__init__``)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.apiserver.support import (
    JSONPATCH,
    MERGE,
    create,
    deployment,
    wait_for,
)

# ============================================================================================
# 6. Built-in resources and discovery


REQUIRED = [
    ("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    ("v1", "namespaces", False),
    ("v1", "events", True),
    ("events.k8s.io/v1", "events", True),
    ("apps/v1", "deployments", True),
    ("v1", "services", True),
    ("batch/v1", "jobs", True),
    ("v1", "configmaps", True),
    ("v1", "secrets", True),
    ("v1", "pods", True),
    ("coordination.k8s.io/v1", "leases", True),
    ("gateway.networking.k8s.io/v1", "httproutes", True),
]


@pytest.mark.parametrize(("group_version", "plural", "namespaced"), REQUIRED)
def test_builtin_resources_are_discoverable(
    http: httpx.Client, group_version: str, plural: str, namespaced: bool
) -> None:
    url = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    resources = {r["name"]: r for r in http.get(url).json()["resources"]}
    assert resources[plural]["namespaced"] is namespaced
    assert {"list", "watch", "get", "create", "patch", "update", "delete"} <= set(resources[plural]["verbs"])


def test_status_subresources_of_builtins(http: httpx.Client) -> None:
    assert "deployments/status" in {r["name"] for r in http.get("/apis/apps/v1").json()["resources"]}
    assert "jobs/status" in {r["name"] for r in http.get("/apis/batch/v1").json()["resources"]}


def test_initial_namespaces(http: httpx.Client) -> None:
    names = {i["metadata"]["name"] for i in http.get("/api/v1/namespaces").json()["items"]}
    assert {"default", "kube-system"} <= names
    assert http.get("/api/v1/namespaces/default").json()["status"]["phase"] == "Active"


def test_events_in_both_groups(http: httpx.Client, ns: str) -> None:
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e1"},
        "reason": "Test",
        "message": "hello",
        "involvedObject": {"kind": "ConfigMap", "name": "a", "namespace": ns},
    }
    create(http, f"/api/v1/namespaces/{ns}/events", core)
    new = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e2"},
        "reason": "Test",
        "note": "hello",
        "regarding": {"kind": "ConfigMap", "name": "a"},
        "action": "Testing",
        "reportingController": "x",
        "reportingInstance": "y",
        "eventTime": "2026-01-01T00:00:00.000000Z",
    }
    create(http, f"/apis/events.k8s.io/v1/namespaces/{ns}/events", new)
    assert [i["metadata"]["name"] for i in http.get(f"/api/v1/namespaces/{ns}/events").json()["items"]] == [
        "e1"
    ]


def test_httproute_roundtrip(http: httpx.Client, ns: str) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "s", "port": 80, "weight": 90},
                        {"name": "c", "port": 80, "weight": 10},
                    ]
                }
            ]
        },
    }
    path = f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"
    create(http, path, route)
    ops = [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50}]
    r = http.patch(f"{path}/r", content=json.dumps(ops), headers=JSONPATCH)
    assert r.json()["spec"]["rules"][0]["backendRefs"][1]["weight"] == 50


def test_no_kubelet_by_default(api: SandboxAPIServer, http: httpx.Client, ns: str) -> None:
    create(http, f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("d"))
    time.sleep(0.3)
    assert "status" not in (api.get_object("deployments", "d", ns) or {})


# ============================================================================================
# 7. Kubelet stand-in


def test_kubelet_stand_in_marks_deployments_ready() -> None:
    with (
        SandboxAPIServer.in_thread(simulate_workloads=True, workload_delay=0.05) as sim,
        httpx.Client(base_url=sim.url) as c,
    ):
        path = "/apis/apps/v1/namespaces/default/deployments"
        create(c, path, deployment("d", replicas=3))
        c.patch(f"{path}/d", json={"spec": {"replicas": 2}}, headers=MERGE)

        def ready() -> dict[str, Any] | None:
            obj = sim.get_object("deployments", "d", "default")
            status = (obj or {}).get("status") or {}
            return status if status.get("observedGeneration") == 2 else None

        status = wait_for(ready)
        assert status["readyReplicas"] == status["availableReplicas"] == status["updatedReplicas"] == 2
        assert status["replicas"] == 2


def test_job_stand_in_marks_jobs_complete() -> None:
    with (
        SandboxAPIServer.in_thread(simulate_jobs=True, workload_delay=0.05) as sim,
        httpx.Client(base_url=sim.url) as c,
    ):
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {
                "template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}}
            },
        }
        create(c, "/apis/batch/v1/namespaces/default/jobs", job)
        wait_for(
            lambda: ((sim.get_object("jobs", "j", "default") or {}).get("status") or {}).get("succeeded") == 1
        )
