"""Conformance of the sandbox API server (rankops.sandbox.apiserver) with a real one.

Checked three ways: raw HTTP (httpx), the official `kubernetes` client, and `kubectl`
(skipped where kubectl is not installed). One test per check. The suite brings its own
small CRDs (Widget, Gadget) so it does not depend on the project's CRDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import yaml

from rankops.sandbox.apiserver import SandboxAPIServer
from rankops.sandbox.schema import validate_custom_resource

ROOT = Path(__file__).resolve().parents[2]
GROUP = "sandbox.rankops.dev"
WIDGETS = f"/apis/{GROUP}/v1"

WIDGET_CRD: dict[str, Any] = yaml.safe_load(f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.{GROUP}}}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [sandbox]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Phase, type: string, jsonPath: .status.phase}}
    - {{name: Color, type: string, jsonPath: .spec.color, priority: 1}}
    - {{name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}}
    - {{name: Age, type: date, jsonPath: .metadata.creationTimestamp}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          metadata: {{type: object}}
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "!has(self.steps) || self.steps[self.steps.size() - 1].weight == 100"
              message: the last step must have weight 100
            properties:
              size: {{type: integer, minimum: 0, maximum: 10}}
              color: {{type: string, enum: [red, green, blue], default: red}}
              code:
                type: string
                pattern: '^[a-z]+$'
                maxLength: 8
                x-kubernetes-validations:
                - {{rule: self == oldSelf, message: code is immutable}}
              port: {{x-kubernetes-int-or-string: true}}
              note: {{type: string, nullable: true}}
              tags: {{type: array, maxItems: 3, items: {{type: string}}}}
              steps:
                type: array
                minItems: 1
                items:
                  type: object
                  required: [weight]
                  properties:
                    weight: {{type: integer, minimum: 0, maximum: 100}}
                    pause: {{type: string, default: 0s}}
              extra: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
""")

# No status subresource: status is part of the main endpoint and bumps generation.
GADGET_CRD: dict[str, Any] = yaml.safe_load(f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: gadgets.{GROUP}}}
spec:
  group: {GROUP}
  scope: Cluster
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
""")


def widget(name: str, size: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "example"}]},
            },
        },
    }


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


MERGE = {"Content-Type": "application/merge-patch+json"}
JSONPATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


@pytest.fixture(scope="module")
def api() -> Iterator[SandboxAPIServer]:
    with SandboxAPIServer.in_thread(crds=[WIDGET_CRD, GADGET_CRD], gc_delay=0.01) as server:
        yield server


@pytest.fixture(scope="module")
def http(api: SandboxAPIServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        yield client


@pytest.fixture
def ns(http: httpx.Client) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    r = http.post(
        "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    assert r.status_code == 201, r.text
    return name


def create(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def watch_lines(
    http: httpx.Client, path: str, params: dict[str, str], max_events: int = 100
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with http.stream("GET", path, params={"watch": "true", **params}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.strip():
                events.append(json.loads(line))
                if len(events) >= max_events:
                    break
    return events


# ============================================================================================
# 1. Object metadata


def test_create_assigns_server_metadata(http: httpx.Client, ns: str) -> None:
    obj = create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    meta = obj["metadata"]
    assert meta["namespace"] == ns
    assert uuid.UUID(meta["uid"])
    assert meta["creationTimestamp"].endswith("Z")
    assert isinstance(meta["resourceVersion"], str) and meta["resourceVersion"].isdigit()
    assert meta["generation"] == 1


def test_body_namespace_must_match_url(http: httpx.Client, ns: str) -> None:
    body = configmap("a")
    body["metadata"]["namespace"] = "other"
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", json=body)
    assert r.status_code == 400
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "BadRequest"


def test_resource_version_is_cluster_wide_and_increasing(http: httpx.Client, ns: str) -> None:
    rv1 = int(
        create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))["metadata"]["resourceVersion"]
    )
    rv2 = int(create(http, f"{WIDGETS}/namespaces/{ns}/widgets", widget("w"))["metadata"]["resourceVersion"])
    r = http.patch(f"/api/v1/namespaces/{ns}/configmaps/a", json={"data": {"k": "v"}}, headers=MERGE)
    rv3 = int(r.json()["metadata"]["resourceVersion"])
    assert rv1 < rv2 < rv3


def test_generate_name(http: httpx.Client, ns: str) -> None:
    body = configmap("")
    body["metadata"] = {"generateName": "job-"}
    names = {create(http, f"/api/v1/namespaces/{ns}/configmaps", body)["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("job-") and len(n) == 9 for n in names)


def test_generation_bumps_on_spec_change_only(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    create(http, path, widget("w"))
    r = http.patch(f"{path}/w", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 1
    r = http.patch(f"{path}/w", json={"spec": {"size": 2}}, headers=MERGE)
    assert r.json()["metadata"]["generation"] == 2


def test_status_write_does_not_bump_generation(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    create(http, path, widget("w"))
    r = http.patch(f"{path}/w/status", json={"status": {"phase": "Ready"}}, headers=MERGE)
    assert r.status_code == 200
    assert r.json()["metadata"]["generation"] == 1 and r.json()["status"]["phase"] == "Ready"


def test_generation_counts_status_without_status_subresource(http: httpx.Client) -> None:
    path = f"{WIDGETS}/gadgets"
    name = f"g-{uuid.uuid4().hex[:6]}"
    create(
        http, path, {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": {}}
    )
    r = http.patch(f"{path}/{name}", json={"status": {"phase": "X"}}, headers=MERGE)
    assert r.json()["status"]["phase"] == "X" and r.json()["metadata"]["generation"] == 2
    assert "namespace" not in r.json()["metadata"]


def test_missing_name_is_invalid(http: httpx.Client, ns: str) -> None:
    body = configmap("")
    body["metadata"] = {}
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", json=body)
    assert r.status_code == 422
    assert r.json()["reason"] == "Invalid"
    assert r.json()["details"]["causes"][0]["field"] == "metadata.name"


def test_create_in_missing_namespace_is_not_found(http: httpx.Client) -> None:
    r = http.post("/api/v1/namespaces/does-not-exist/configmaps", json=configmap("a"))
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"


def test_duplicate_create_is_already_exists(http: httpx.Client, ns: str) -> None:
    create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", json=configmap("a"))
    assert r.status_code == 409
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "AlreadyExists"
    assert r.json()["details"]["name"] == "a"


def test_get_missing_is_not_found_status(http: httpx.Client, ns: str) -> None:
    r = http.get(f"{WIDGETS}/namespaces/{ns}/widgets/nope")
    assert r.status_code == 404
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == "NotFound"
    assert body["message"] == f'widgets.{GROUP} "nope" not found'


def test_finalizers_delay_deletion(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    body = configmap("a")
    body["metadata"]["finalizers"] = ["example.com/keep"]
    create(http, path, body)
    r = http.delete(f"{path}/a")
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    assert http.get(f"{path}/a").status_code == 200
    r = http.patch(f"{path}/a", json={"metadata": {"finalizers": None}}, headers=MERGE)
    assert r.status_code == 200
    assert http.get(f"{path}/a").status_code == 404


def test_no_new_finalizers_while_deleting(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    body = configmap("a")
    body["metadata"]["finalizers"] = ["example.com/keep"]
    create(http, path, body)
    http.delete(f"{path}/a")
    r = http.patch(f"{path}/a", json={"metadata": {"finalizers": ["example.com/keep", "x/y"]}}, headers=MERGE)
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "metadata.finalizers"


def test_status_is_dropped_on_create_with_status_subresource(http: httpx.Client, ns: str) -> None:
    body = widget("w")
    body["status"] = {"phase": "Faked"}
    assert "status" not in create(http, f"{WIDGETS}/namespaces/{ns}/widgets", body)


# ============================================================================================
# 2. Reads: selectors, lists, watches, errors


@pytest.fixture
def labelled(http: httpx.Client, ns: str) -> str:
    for name, labels in [
        ("a", {"tier": "gold", "env": "prod"}),
        ("b", {"tier": "silver", "env": "prod"}),
        ("c", {"tier": "bronze"}),
        ("d", {}),
    ]:
        create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap(name, labels))
    return ns


def names_for(http: httpx.Client, ns: str, **params: str) -> list[str]:
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps", params=params)
    assert r.status_code == 200, r.text
    return sorted(i["metadata"]["name"] for i in r.json()["items"])


def test_label_selector_equality(http: httpx.Client, labelled: str) -> None:
    assert names_for(http, labelled, labelSelector="tier=gold") == ["a"]
    assert names_for(http, labelled, labelSelector="tier==gold,env=prod") == ["a"]


def test_label_selector_inequality(http: httpx.Client, labelled: str) -> None:
    assert names_for(http, labelled, labelSelector="tier!=gold") == ["b", "c", "d"]


def test_label_selector_set_based(http: httpx.Client, labelled: str) -> None:
    assert names_for(http, labelled, labelSelector="tier in (gold,silver)") == ["a", "b"]
    assert names_for(http, labelled, labelSelector="tier notin (gold,silver)") == ["c", "d"]


def test_label_selector_existence(http: httpx.Client, labelled: str) -> None:
    assert names_for(http, labelled, labelSelector="env") == ["a", "b"]
    assert names_for(http, labelled, labelSelector="!env") == ["c", "d"]


def test_field_selector(http: httpx.Client, labelled: str) -> None:
    assert names_for(http, labelled, fieldSelector="metadata.name=b") == ["b"]
    assert names_for(http, labelled, fieldSelector=f"metadata.namespace={labelled},metadata.name!=b") == [
        "a",
        "c",
        "d",
    ]
    r = http.get("/api/v1/configmaps", params={"fieldSelector": f"metadata.namespace={labelled}"})
    assert len(r.json()["items"]) == 4


def test_bad_label_selector_is_bad_request(http: httpx.Client, ns: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps", params={"labelSelector": "a in b"})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"


def test_list_carries_resource_version_and_kind(http: httpx.Client, labelled: str) -> None:
    body = http.get(f"/api/v1/namespaces/{labelled}/configmaps").json()
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert int(body["metadata"]["resourceVersion"]) >= max(
        int(i["metadata"]["resourceVersion"]) for i in body["items"]
    )


def test_cluster_wide_list_of_namespaced_resource(http: httpx.Client, ns: str) -> None:
    create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("x"))
    items = http.get("/api/v1/configmaps").json()["items"]
    assert any(i["metadata"]["namespace"] == ns and i["metadata"]["name"] == "x" for i in items)


def test_list_pagination(http: httpx.Client, labelled: str) -> None:
    path = f"/api/v1/namespaces/{labelled}/configmaps"
    first = http.get(path, params={"limit": "3"}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b", "c"]
    assert first["metadata"]["remainingItemCount"] == 1
    rest = http.get(path, params={"limit": "3", "continue": first["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["d"] and "continue" not in rest["metadata"]


def test_watch_without_resource_version_lists_existing(http: httpx.Client, labelled: str) -> None:
    events = watch_lines(http, f"/api/v1/namespaces/{labelled}/configmaps", {"timeoutSeconds": "1"})
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["a", "b", "c", "d"]
    assert {e["type"] for e in events} == {"ADDED"}


def test_watch_with_label_selector(http: httpx.Client, labelled: str) -> None:
    events = watch_lines(
        http,
        f"/api/v1/namespaces/{labelled}/configmaps",
        {"timeoutSeconds": "1", "labelSelector": "tier in (gold,bronze)"},
    )
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["a", "c"]


def test_watch_with_field_selector(http: httpx.Client, labelled: str) -> None:
    events = watch_lines(
        http,
        f"/api/v1/namespaces/{labelled}/configmaps",
        {"timeoutSeconds": "1", "fieldSelector": "metadata.name=c"},
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["c"]


def test_watch_from_resource_version_replays_newer_events(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    create(http, path, configmap("old"))
    rv = http.get(path).json()["metadata"]["resourceVersion"]
    create(http, path, configmap("new"))
    http.patch(f"{path}/new", json={"data": {"a": "b"}}, headers=MERGE)
    http.delete(f"{path}/new")
    events = watch_lines(http, path, {"timeoutSeconds": "1", "resourceVersion": rv})
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "new"),
        ("MODIFIED", "new"),
        ("DELETED", "new"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_watch_streams_live_changes(api: SandboxAPIServer, http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rv = http.get(path).json()["metadata"]["resourceVersion"]
    events: list[dict[str, Any]] = []

    def consume() -> None:
        with httpx.Client(base_url=api.url, timeout=10) as c:
            events.extend(watch_lines(c, path, {"timeoutSeconds": "3", "resourceVersion": rv}, max_events=2))

    import threading

    thread = threading.Thread(target=consume)
    thread.start()
    time.sleep(0.3)
    create(http, path, configmap("live"))
    http.patch(f"{path}/live", json={"data": {"k": "v"}}, headers=MERGE)
    thread.join(5)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]


def test_watch_selection_changes_are_added_and_deleted(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    create(http, path, configmap("a", {"track": "stable"}))
    rv = http.get(path).json()["metadata"]["resourceVersion"]
    http.patch(f"{path}/a", json={"metadata": {"labels": {"track": "canary"}}}, headers=MERGE)
    http.patch(f"{path}/a", json={"data": {"k": "v"}}, headers=MERGE)
    http.patch(f"{path}/a", json={"metadata": {"labels": {"track": "stable"}}}, headers=MERGE)
    events = watch_lines(
        http, path, {"timeoutSeconds": "1", "resourceVersion": rv, "labelSelector": "track=canary"}
    )
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_of_a_departed_client_is_released(api: SandboxAPIServer, ns: str) -> None:
    before = len(api.store.subscribers)
    with (
        httpx.Client(base_url=api.url, timeout=5) as c,
        c.stream("GET", f"/api/v1/namespaces/{ns}/configmaps", params={"watch": "true"}) as r,
    ):
        assert r.status_code == 200
        wait_for(lambda: len(api.store.subscribers) > before)
    wait_for(lambda: len(api.store.subscribers) == before, timeout=5)


def test_watch_timeout_seconds_ends_stream(http: httpx.Client, ns: str) -> None:
    started = time.monotonic()
    watch_lines(http, f"/api/v1/namespaces/{ns}/configmaps", {"timeoutSeconds": "1"})
    assert 0.8 < time.monotonic() - started < 5


def test_watch_from_expired_resource_version_is_gone() -> None:
    with SandboxAPIServer.in_thread(watch_log_size=3) as small, httpx.Client(base_url=small.url) as c:
        for i in range(6):
            create(c, "/api/v1/namespaces/default/configmaps", configmap(f"c{i}"))
        events = watch_lines(c, "/api/v1/namespaces/default/configmaps", {"resourceVersion": "1"})
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_unknown_resource_is_not_found(http: httpx.Client) -> None:
    r = http.get("/apis/nope.example.com/v1/things")
    assert r.status_code == 404 and r.json()["kind"] == "Status"


# ============================================================================================
# 3. Writes


def test_put_replaces(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    obj = create(http, path, configmap("a", k="1"))
    obj["data"] = {"other": "2"}
    r = http.put(f"{path}/a", json=obj)
    assert r.status_code == 200 and r.json()["data"] == {"other": "2"}
    assert int(r.json()["metadata"]["resourceVersion"]) > int(obj["metadata"]["resourceVersion"])


def test_put_with_stale_resource_version_conflicts(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    obj = create(http, path, configmap("a"))
    http.patch(f"{path}/a", json={"data": {"x": "1"}}, headers=MERGE)
    r = http.put(f"{path}/a", json=obj)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert "the object has been modified" in r.json()["message"]


def test_put_missing_is_not_found(http: httpx.Client, ns: str) -> None:
    r = http.put(f"/api/v1/namespaces/{ns}/configmaps/a", json=configmap("a"))
    assert r.status_code == 404


def test_put_name_mismatch_is_bad_request(http: httpx.Client, ns: str) -> None:
    create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    r = http.put(f"/api/v1/namespaces/{ns}/configmaps/a", json=configmap("b"))
    assert r.status_code == 400


def test_merge_patch(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    create(http, path, configmap("a", k1="1", k2="2"))
    r = http.patch(f"{path}/a", json={"data": {"k1": None, "k3": "3"}}, headers=MERGE)
    assert r.json()["data"] == {"k2": "2", "k3": "3"}


def test_json_patch(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    create(http, path, configmap("a", k1="1"))
    ops = [{"op": "add", "path": "/data/k2", "value": "2"}, {"op": "remove", "path": "/data/k1"}]
    r = http.patch(f"{path}/a", content=json.dumps(ops), headers=JSONPATCH)
    assert r.status_code == 200 and r.json()["data"] == {"k2": "2"}


def test_json_patch_failed_test_op_is_rejected(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    create(http, path, configmap("a", k1="1"))
    ops = [{"op": "test", "path": "/data/k1", "value": "wrong"}, {"op": "remove", "path": "/data/k1"}]
    r = http.patch(f"{path}/a", content=json.dumps(ops), headers=JSONPATCH)
    assert r.status_code == 422 and r.json()["kind"] == "Status"
    assert http.get(f"{path}/a").json()["data"] == {"k1": "1"}


def test_strategic_merge_patch_is_accepted(http: httpx.Client, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    create(http, path, deployment("d"))
    r = http.patch(f"{path}/d", json={"spec": {"replicas": 5}}, headers=STRATEGIC)
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5


def test_patch_with_stale_resource_version_conflicts(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    obj = create(http, path, configmap("a"))
    http.patch(f"{path}/a", json={"data": {"x": "1"}}, headers=MERGE)
    stale = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "data": {"y": "2"}}
    r = http.patch(f"{path}/a", json=stale, headers=MERGE)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"


def test_unsupported_patch_type(http: httpx.Client, ns: str) -> None:
    create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    r = http.patch(
        f"/api/v1/namespaces/{ns}/configmaps/a", content="{}", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415


def test_noop_patch_keeps_resource_version(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    obj = create(http, path, configmap("a", k="v"))
    r = http.patch(f"{path}/a", json={"data": {"k": "v"}}, headers=MERGE)
    assert r.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_server_side_apply_creates_and_records_manager(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps/a"
    r = http.patch(
        path, content=yaml.safe_dump(configmap("a", k="v")), headers=APPLY, params={"fieldManager": "tester"}
    )
    assert r.status_code == 201, r.text
    entries = r.json()["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [("tester", "Apply")]
    assert "f:k" in entries[0]["fieldsV1"]["f:data"]


def test_server_side_apply_removes_fields_no_longer_applied(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps/a"
    http.patch(
        path,
        content=yaml.safe_dump(configmap("a", k1="1", k2="2")),
        headers=APPLY,
        params={"fieldManager": "tester"},
    )
    r = http.patch(
        path, content=yaml.safe_dump(configmap("a", k1="1")), headers=APPLY, params={"fieldManager": "tester"}
    )
    assert r.status_code == 200 and r.json()["data"] == {"k1": "1"}


def test_server_side_apply_conflicts_and_force(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps/a"
    http.patch(
        path, content=yaml.safe_dump(configmap("a", k="1")), headers=APPLY, params={"fieldManager": "one"}
    )
    r = http.patch(
        path, content=yaml.safe_dump(configmap("a", k="2")), headers=APPLY, params={"fieldManager": "two"}
    )
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert r.json()["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "one"', "field": ".data.k"}
    ]
    r = http.patch(
        path,
        content=yaml.safe_dump(configmap("a", k="2")),
        headers=APPLY,
        params={"fieldManager": "two", "force": "true"},
    )
    assert r.status_code == 200 and r.json()["data"] == {"k": "2"}


def test_server_side_apply_needs_field_manager(http: httpx.Client, ns: str) -> None:
    r = http.patch(
        f"/api/v1/namespaces/{ns}/configmaps/a", content=yaml.safe_dump(configmap("a")), headers=APPLY
    )
    assert r.status_code == 400


def test_main_endpoint_ignores_status(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    create(http, path, widget("w"))
    http.patch(f"{path}/w/status", json={"status": {"phase": "Ready"}}, headers=MERGE)
    r = http.patch(f"{path}/w", json={"status": {"phase": "Hacked"}, "spec": {"size": 3}}, headers=MERGE)
    assert r.json()["status"] == {"phase": "Ready"} and r.json()["spec"]["size"] == 3


def test_status_endpoint_ignores_spec(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    create(http, path, widget("w", size=1))
    r = http.patch(
        f"{path}/w/status", json={"spec": {"size": 9}, "status": {"phase": "Ready"}}, headers=MERGE
    )
    assert r.json()["spec"]["size"] == 1 and r.json()["status"]["phase"] == "Ready"
    assert r.json()["metadata"]["generation"] == 1


def test_put_status_subresource(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    obj = create(http, path, widget("w", size=1))
    obj["status"] = {"phase": "Done"}
    obj["spec"]["size"] = 7
    r = http.put(f"{path}/w/status", json=obj)
    assert r.status_code == 200 and r.json()["status"] == {"phase": "Done"} and r.json()["spec"]["size"] == 1


def test_owner_reference_cascade_is_recursive(api: SandboxAPIServer, http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    owner = create(http, path, configmap("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    child = configmap("child")
    child["metadata"]["ownerReferences"] = [ref]
    child_obj = create(http, path, child)
    grandchild = configmap("grandchild")
    grandchild["metadata"]["ownerReferences"] = [
        {**ref, "name": "child", "uid": child_obj["metadata"]["uid"]}
    ]
    create(http, path, grandchild)
    assert http.delete(f"{path}/owner").status_code == 200
    wait_for(lambda: api.get_object("configmaps", "grandchild", ns) is None)
    assert api.get_object("configmaps", "child", ns) is None


def test_foreground_deletion_waits_for_dependents(api: SandboxAPIServer, http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    owner = create(http, path, configmap("owner"))
    child = configmap("child")
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    ]
    child["metadata"]["finalizers"] = ["example.com/hold"]
    create(http, path, child)
    r = http.request("DELETE", f"{path}/owner", json={"propagationPolicy": "Foreground"})
    assert r.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    wait_for(
        lambda: (api.get_object("configmaps", "child", ns) or {}).get("metadata", {}).get("deletionTimestamp")
    )
    time.sleep(0.1)
    assert api.get_object("configmaps", "owner", ns) is not None  # held while the child exists
    http.patch(f"{path}/child", json={"metadata": {"finalizers": None}}, headers=MERGE)
    wait_for(lambda: api.get_object("configmaps", "owner", ns) is None)


def test_orphan_propagation_keeps_dependents(api: SandboxAPIServer, http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    owner = create(http, path, configmap("owner"))
    child = configmap("child")
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    ]
    create(http, path, child)
    r = http.request("DELETE", f"{path}/owner", json={"propagationPolicy": "Orphan"})
    assert r.status_code == 200
    time.sleep(0.2)
    kept = api.get_object("configmaps", "child", ns)
    assert kept is not None and "ownerReferences" not in kept["metadata"]


def test_dependent_with_a_live_owner_survives(api: SandboxAPIServer, http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    a, b = create(http, path, configmap("a")), create(http, path, configmap("b"))
    child = configmap("child")
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}
        for o in (a, b)
    ]
    create(http, path, child)
    http.delete(f"{path}/a")
    wait_for(lambda: len(api.get_object("configmaps", "child", ns)["metadata"]["ownerReferences"]) == 1)


def test_namespace_deletion_removes_its_objects(api: SandboxAPIServer, http: httpx.Client, ns: str) -> None:
    create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    assert http.delete(f"/api/v1/namespaces/{ns}").status_code == 200
    wait_for(lambda: not api.list_objects("configmaps", ns))


def test_delete_precondition_conflict(http: httpx.Client, ns: str) -> None:
    create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    r = http.request(
        "DELETE", f"/api/v1/namespaces/{ns}/configmaps/a", json={"preconditions": {"resourceVersion": "1"}}
    )
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"


def test_dry_run_does_not_persist(http: httpx.Client, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", json=configmap("a"), params={"dryRun": "All"})
    assert r.status_code == 201
    assert http.get(f"/api/v1/namespaces/{ns}/configmaps/a").status_code == 404


def test_scale_subresource(http: httpx.Client, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    create(http, path, deployment("d", replicas=2))
    scale = http.get(f"{path}/d/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    scale["spec"]["replicas"] = 4
    assert http.put(f"{path}/d/scale", json=scale).json()["spec"]["replicas"] == 4
    assert http.get(f"{path}/d").json()["spec"]["replicas"] == 4


def test_delete_collection_with_selector(http: httpx.Client, labelled: str) -> None:
    r = http.delete(f"/api/v1/namespaces/{labelled}/configmaps", params={"labelSelector": "env=prod"})
    assert r.status_code == 200
    assert names_for(http, labelled) == ["c", "d"]


# ============================================================================================
# 4. CRDs


def test_crd_makes_resource_served_and_discoverable(http: httpx.Client) -> None:
    crd = json.loads(
        json.dumps(WIDGET_CRD)
        .replace("widget", "doohickey")
        .replace("Widget", "Doohickey")
        .replace(GROUP, "extra.rankops.dev")
        .replace('"wd"', '"dh"')
    )
    r = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert r.status_code == 201, r.text
    conditions = {c["type"]: c["status"] for c in r.json()["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert groups["extra.rankops.dev"]["preferredVersion"]["version"] == "v1"
    assert http.get("/apis/extra.rankops.dev").json()["kind"] == "APIGroup"
    resources = {r["name"]: r for r in http.get("/apis/extra.rankops.dev/v1").json()["resources"]}
    assert resources["doohickeys"]["kind"] == "Doohickey" and resources["doohickeys"]["namespaced"] is True
    assert "doohickeys/status" in resources and "watch" in resources["doohickeys"]["verbs"]
    assert http.get("/apis/extra.rankops.dev/v1/namespaces/default/doohickeys").status_code == 200


def test_crd_deletion_stops_serving(http: httpx.Client) -> None:
    crd = json.loads(json.dumps(GADGET_CRD).replace("gadget", "gizmo").replace("Gadget", "Gizmo"))
    create(http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    create(
        http, f"{WIDGETS}/gizmos", {"apiVersion": f"{GROUP}/v1", "kind": "Gizmo", "metadata": {"name": "g"}}
    )
    assert (
        http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.{GROUP}").status_code
        == 200
    )
    assert http.get(f"{WIDGETS}/gizmos").status_code == 404
    names = [r["name"] for r in http.get(WIDGETS).json()["resources"]]
    assert "gizmos" not in names and "widgets" in names


def test_invalid_crd_is_rejected(http: httpx.Client) -> None:
    crd = json.loads(json.dumps(GADGET_CRD).replace("gadget", "thing").replace("Gadget", "Thing"))
    crd["spec"]["versions"][0]["storage"] = False
    r = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.versions"


def test_cr_validation_maximum(http: httpx.Client, ns: str) -> None:
    r = http.post(f"{WIDGETS}/namespaces/{ns}/widgets", json=widget("w", size=11))
    assert r.status_code == 422
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "Invalid"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.size",
            "message": "Invalid value: 11: spec.size in body should be less than or equal to 10",
        }
    ]
    assert body["message"].startswith(f'Widget.{GROUP} "w" is invalid: spec.size: Invalid value: 11')


def test_cr_validation_nested_path(http: httpx.Client, ns: str) -> None:
    r = http.post(
        f"{WIDGETS}/namespaces/{ns}/widgets",
        json=widget("w", steps=[{"weight": 10}, {"weight": 50}, {"weight": 150}]),
    )
    causes = {c["field"]: c["message"] for c in r.json()["details"]["causes"]}
    assert causes["spec.steps[2].weight"] == (
        "Invalid value: 150: spec.steps[2].weight in body should be less than or equal to 100"
    )


def test_cr_validation_type_enum_pattern_required_items(http: httpx.Client, ns: str) -> None:
    body = widget("w", color="purple", code="ABC", tags=["a", "b", "c", "d"], steps=[])
    del body["spec"]["size"]
    body["spec"]["port"] = 1.5
    r = http.post(f"{WIDGETS}/namespaces/{ns}/widgets", json=body)
    assert r.status_code == 422
    causes = {c["field"]: (c["reason"], c["message"]) for c in r.json()["details"]["causes"]}
    assert causes["spec.size"][0] == "FieldValueRequired"
    assert causes["spec.color"] == (
        "FieldValueNotSupported",
        'Unsupported value: "purple": supported values: "red", "green", "blue"',
    )
    assert "should match '^[a-z]+$'" in causes["spec.code"][1]
    assert causes["spec.tags"][0] == "FieldValueTooMany"
    assert "should have at least 1 items" in causes["spec.steps"][1]
    assert "must be of type integer,string" in causes["spec.port"][1]


def test_cr_type_mismatch(http: httpx.Client, ns: str) -> None:
    r = http.post(f"{WIDGETS}/namespaces/{ns}/widgets", json=widget("w", size="big"))
    cause = r.json()["details"]["causes"][0]
    assert cause["field"] == "spec.size" and "must be of type integer" in cause["message"]


def test_cr_defaults_and_pruning(http: httpx.Client, ns: str) -> None:
    obj = create(
        http,
        f"{WIDGETS}/namespaces/{ns}/widgets",
        widget("w", steps=[{"weight": 100}], unknown="x", extra={"free": {"form": 1}}),
    )
    assert obj["spec"]["color"] == "red"
    assert obj["spec"]["steps"] == [{"weight": 100, "pause": "0s"}]
    assert "unknown" not in obj["spec"]
    assert obj["spec"]["extra"] == {"free": {"form": 1}}


def test_cr_metadata_is_not_pruned(http: httpx.Client, ns: str) -> None:
    body = widget("w")
    body["metadata"].update({"labels": {"a": "b"}, "annotations": {"note": "kept"}})
    obj = create(http, f"{WIDGETS}/namespaces/{ns}/widgets", body)
    assert obj["metadata"]["labels"] == {"a": "b"} and obj["metadata"]["annotations"] == {"note": "kept"}


def test_cr_unknown_fields_warn_by_default_and_fail_when_strict(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    r = http.post(path, json=widget("w", colour="red"))
    assert r.status_code == 201 and "colour" not in r.json()["spec"]
    assert 'unknown field \\"spec.colour\\"' in r.headers["Warning"]
    r = http.post(path, json=widget("w2", colour="red"), params={"fieldValidation": "Strict"})
    assert r.status_code == 400 and 'unknown field "spec.colour"' in r.json()["message"]
    r = http.post(path, json=widget("w3", colour="red"), params={"fieldValidation": "Ignore"})
    assert r.status_code == 201 and "Warning" not in r.headers


def test_cr_nullable_and_int_or_string(http: httpx.Client, ns: str) -> None:
    obj = create(http, f"{WIDGETS}/namespaces/{ns}/widgets", widget("w", note=None, port="http"))
    assert obj["spec"]["note"] is None and obj["spec"]["port"] == "http"
    obj = create(http, f"{WIDGETS}/namespaces/{ns}/widgets", widget("w2", port=8080))
    assert obj["spec"]["port"] == 8080


def test_cr_cel_rule(http: httpx.Client, ns: str) -> None:
    r = http.post(f"{WIDGETS}/namespaces/{ns}/widgets", json=widget("w", steps=[{"weight": 10}]))
    assert r.status_code == 422
    assert r.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec",
            "message": 'Invalid value: "object": the last step must have weight 100',
        }
    ]


def test_cr_cel_transition_rule(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    create(http, path, widget("w", code="abc"))
    r = http.patch(f"{path}/w", json={"spec": {"code": "xyz"}}, headers=MERGE)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.code"
    assert r.json()["details"]["causes"][0]["message"].endswith("code is immutable")
    assert http.patch(f"{path}/w", json={"spec": {"size": 5}}, headers=MERGE).status_code == 200


def test_cr_validation_on_patch_and_put(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    obj = create(http, path, widget("w", size=1))
    assert http.patch(f"{path}/w", json={"spec": {"size": 99}}, headers=MERGE).status_code == 422
    obj["spec"]["size"] = -1
    assert http.put(f"{path}/w", json=obj).status_code == 422
    assert http.get(f"{path}/w").json()["spec"]["size"] == 1


def test_schema_function_without_server() -> None:
    obj, errors = validate_custom_resource(WIDGET_CRD, widget("w", size=12, steps=[{"weight": 100}]))
    assert obj["spec"]["steps"][0]["pause"] == "0s" and obj["spec"]["color"] == "red"
    assert [(e.path, e.message) for e in errors] == [
        ("spec.size", "spec.size in body should be less than or equal to 10")
    ]
    assert (
        str(errors[0]) == "spec.size: Invalid value: 12: spec.size in body should be less than or equal to 10"
    )


# ============================================================================================
# 5. Server-side printing


def test_table_for_custom_resource(http: httpx.Client, ns: str) -> None:
    path = f"{WIDGETS}/namespaces/{ns}/widgets"
    create(http, path, widget("w", size=4, color="blue"))
    http.patch(
        f"{path}/w/status",
        json={"status": {"phase": "Healthy", "conditions": [{"type": "Ready", "status": "True"}]}},
        headers=MERGE,
    )
    table = http.get(path, headers=TABLE).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Size", "Phase", "Color", "Ready", "Age"]
    assert [c["priority"] for c in table["columnDefinitions"]][3] == 1
    cells = table["rows"][0]["cells"]
    assert cells[:5] == ["w", 4, "Healthy", "blue", "True"] and cells[5].endswith("s")
    assert table["rows"][0]["object"]["metadata"]["name"] == "w"


def test_table_for_builtin(http: httpx.Client, ns: str) -> None:
    create(http, f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    table = http.get(f"/api/v1/namespaces/{ns}/configmaps", headers=TABLE).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"][0] == "a"


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


# ============================================================================================
# 8. Running it


async def test_async_context_manager_and_kmock_reactions() -> None:
    import aiohttp

    async with SandboxAPIServer(crds=[WIDGET_CRD]) as server:
        server["get", "/apis/sandbox.rankops.dev/v1/namespaces/default/widgets/injected"] << 503
        async with aiohttp.ClientSession(server.url) as session:
            async with session.post(f"{WIDGETS}/namespaces/default/widgets", json=widget("w")) as r:
                assert r.status == 201
            async with session.get(f"{WIDGETS}/namespaces/default/widgets/w") as r:
                assert (await r.json())["spec"]["size"] == 1
            async with session.get(f"{WIDGETS}/namespaces/default/widgets/injected") as r:
                assert r.status == 503
        assert server.get_object("widgets", "w", "default") is not None
        creates = [r for r in server if r.action == kmock.action.CREATE]  # kmock's request capture
        assert len(creates) == 1 and creates[0].resource.plural == "widgets"
        assert creates[0].namespace == "default"
        await asyncio.sleep(0)


def test_in_thread_helpers_and_kubeconfig(api: SandboxAPIServer, tmp_path: Path, ns: str) -> None:
    path = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=ns)
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == api.url
    assert config["contexts"][0]["context"]["namespace"] == ns
    obj = api.apply_object({**configmap("seeded", k="v"), "metadata": {"name": "seeded", "namespace": ns}})
    assert obj["metadata"]["resourceVersion"]
    assert [o["metadata"]["name"] for o in api.list_objects("configmaps", ns)] == ["seeded"]
    api.delete_object("configmaps", "seeded", ns)
    assert api.get_object("configmaps", "seeded", ns) is None


def test_cli_runs_standalone(tmp_path: Path) -> None:
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(yaml.safe_dump(WIDGET_CRD))
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rankops.cli",
            "sandbox",
            "apiserver",
            "--port",
            "0",
            "--crds",
            str(crd_file),
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(str(ROOT / d) for d in ("sandbox", "cli", "operator", "serving")),
        },
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}{WIDGETS}").status_code == 200
        wait_for(kubeconfig.exists)
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


# ============================================================================================
# 9. kopf against the server (the property the rest of the project relies on)


def test_kopf_operator_runs_against_the_server() -> None:
    kopf = pytest.importorskip("kopf")
    from kopf.testing import KopfRunner

    default_registry = kopf.get_default_registry()  # kopf's CLI installs the given registry as default
    with contextlib.ExitStack() as cleanup, SandboxAPIServer.in_thread(crds=[WIDGET_CRD]) as server:
        cleanup.callback(kopf.set_default_registry, default_registry)  # leave no handlers behind
        registry = kopf.OperatorRegistry()
        settings = kopf.OperatorSettings()
        settings.watching.server_timeout = 10
        deleted: list[str] = []

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> Any:
            return kopf.ConnectionInfo(server=server.url, insecure=True)

        @kopf.on.create(GROUP, "v1", "widgets", registry=registry)
        def on_create(spec: Any, patch: Any, body: Any, **_: Any) -> None:
            patch.status["phase"] = "Healthy"
            patch.status["seenSize"] = spec["size"]
            kopf.info(body, reason="Seen", message="the handler saw it")

        @kopf.on.delete(GROUP, "v1", "widgets", registry=registry)
        def on_delete(name: str, **_: Any) -> None:
            deleted.append(name)

        with KopfRunner(
            ["run", "--standalone", "-A"], registry=registry, settings=settings, timeout=30
        ) as runner:
            server.create({**widget("w", size=3), "metadata": {"name": "w", "namespace": "default"}})

            def handled() -> dict[str, Any] | None:
                obj = server.get_object("widgets", "w", "default") or {}
                return obj if (obj.get("status") or {}).get("phase") == "Healthy" else None

            obj = wait_for(handled, timeout=15)
            assert obj["status"]["seenSize"] == 3
            assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
            assert obj["metadata"]["generation"] == 1

            def posted() -> list[dict[str, Any]]:
                return [e for e in server.list_objects("v1/events", "default") if e.get("reason") == "Seen"]

            [event] = wait_for(posted, timeout=15)
            assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]
            server.delete_object("widgets", "w", "default")
            wait_for(lambda: server.get_object("widgets", "w", "default") is None, timeout=15)
        assert runner.exit_code == 0, runner.output
        assert runner.exception is None
        assert deleted == ["w"]


# ============================================================================================
# 10. The official kubernetes client


@pytest.fixture(scope="module")
def k8s(api: SandboxAPIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    kubernetes = pytest.importorskip("kubernetes")
    path = api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    client = kubernetes.config.new_client_from_config(config_file=str(path))
    yield client
    client.close()


def test_client_create_and_get(k8s: Any, ns: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"), data={"k": "v"})
    )
    got = core.read_namespaced_config_map("a", ns)
    assert got.data == {"k": "v"} and got.metadata.uid and got.metadata.resource_version


def test_client_list_with_label_selector(k8s: Any, labelled: str) -> None:
    from kubernetes import client

    items = (
        client.CoreV1Api(k8s)
        .list_namespaced_config_map(labelled, label_selector="tier in (gold,bronze)")
        .items
    )
    assert sorted(i.metadata.name for i in items) == ["a", "c"]


def test_client_replace_with_stale_resource_version_is_409(k8s: Any, ns: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    apps = client.AppsV1Api(k8s)
    dep = apps.create_namespaced_deployment(ns, deployment("d"))
    apps.patch_namespaced_deployment("d", ns, {"spec": {"replicas": 3}})
    dep.spec.replicas = 5
    with pytest.raises(ApiException) as info:
        apps.replace_namespaced_deployment("d", ns, dep)
    assert info.value.status == 409 and json.loads(info.value.body)["reason"] == "Conflict"


def test_client_patch_custom_object(k8s: Any, ns: str) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(k8s)
    custom.create_namespaced_custom_object(GROUP, "v1", ns, "widgets", widget("w"))
    patched = custom.patch_namespaced_custom_object(GROUP, "v1", ns, "widgets", "w", {"spec": {"size": 6}})
    assert patched["spec"]["size"] == 6 and patched["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(
        GROUP, "v1", ns, "widgets", "w", {"status": {"phase": "Healthy"}}
    )
    assert status["status"]["phase"] == "Healthy"


def test_client_delete(k8s: Any, ns: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a")))
    core.delete_namespaced_config_map("a", ns)
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("a", ns)
    assert info.value.status == 404


def test_client_crd_validation_is_422(k8s: Any, ns: str) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as info:
        client.CustomObjectsApi(k8s).create_namespaced_custom_object(
            GROUP, "v1", ns, "widgets", widget("w", size=50)
        )
    assert info.value.status == 422
    assert json.loads(info.value.body)["details"]["causes"][0]["field"] == "spec.size"


def test_client_watch(k8s: Any, ns: str) -> None:
    from kubernetes import client, watch

    core = client.CoreV1Api(k8s)
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a", labels={"w": "1"}))
    )
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="b")))
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, ns, label_selector="w=1", timeout_seconds=1
        )
    ]
    assert seen == [("ADDED", "a")]


# ============================================================================================
# 11. kubectl

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture
def kubectl(
    api: SandboxAPIServer, tmp_path: Path, ns: str
) -> Callable[..., subprocess.CompletedProcess[str]]:
    config = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=ns)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(config), *args], capture_output=True, text=True, timeout=60
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


@needs_kubectl
def test_kubectl_apply(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, api: SandboxAPIServer, ns: str
) -> None:
    manifest = tmp_path / "w.yaml"
    manifest.write_text(yaml.safe_dump_all([widget("w", size=2, color="green"), deployment("d")]))
    out = kubectl("apply", "-f", str(manifest)).stdout
    assert f"widget.{GROUP}/w created" in out and "deployment.apps/d created" in out
    assert "unchanged" in kubectl("apply", "-f", str(manifest)).stdout
    assert api.get_object("widgets", "w", ns)["spec"]["color"] == "green"


@needs_kubectl
def test_kubectl_get_wide(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], http: httpx.Client, ns: str
) -> None:
    create(http, f"{WIDGETS}/namespaces/{ns}/widgets", widget("w", size=7, color="blue"))
    http.patch(
        f"{WIDGETS}/namespaces/{ns}/widgets/w/status", json={"status": {"phase": "Healthy"}}, headers=MERGE
    )
    lines = kubectl("get", "wd", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "PHASE", "COLOR", "READY", "AGE"]
    assert lines[1].split()[:4] == ["w", "7", "Healthy", "blue"]
    narrow = kubectl("get", "widgets").stdout.splitlines()
    assert "COLOR" not in narrow[0]


@needs_kubectl
def test_kubectl_delete(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], http: httpx.Client, ns: str
) -> None:
    create(http, f"{WIDGETS}/namespaces/{ns}/widgets", widget("w"))
    assert f'widget.{GROUP} "w" deleted' in kubectl("delete", "widget", "w").stdout
    assert http.get(f"{WIDGETS}/namespaces/{ns}/widgets/w").status_code == 404


@needs_kubectl
def test_kubectl_reports_validation_errors(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(widget("w", size=30)))
    result = kubectl("apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert "spec.size: Invalid value: 30" in result.stderr


@needs_kubectl
def test_kubectl_rejects_unknown_fields(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(yaml.safe_dump(widget("w", colour="red")))
    result = kubectl("apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert 'strict decoding error: unknown field "spec.colour"' in result.stderr


@needs_kubectl
def test_kubectl_server_side_apply_and_scale(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, api: SandboxAPIServer, ns: str
) -> None:
    manifest = tmp_path / "d.yaml"
    manifest.write_text(yaml.safe_dump(deployment("d", replicas=1)))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(manifest)).stdout
    kubectl("scale", "deployment/d", "--replicas=3")
    obj = api.get_object("deployments", "d", ns)
    assert obj is not None and obj["spec"]["replicas"] == 3 and obj["metadata"]["generation"] == 2
    managers = {e["manager"] for e in obj["metadata"]["managedFields"]}
    assert "kubectl" in managers
