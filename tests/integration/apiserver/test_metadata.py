"""Object metadata: server-assigned fields, names, namespaces, generation, finalizers.

Checked against what a real API server answers (see ``__init__``)."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.apiserver.support import (
    GROUP,
    MERGE,
    WIDGETS,
    configmap,
    create,
    widget,
)

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
