"""Writes: PUT, the patch types, server-side apply, status and scale subresources, deletion and cascades.

Checked against what a real API server answers (see ``__init__``)."""

from __future__ import annotations

import json
import time

import httpx
import yaml

from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.apiserver.support import (
    APPLY,
    JSONPATCH,
    MERGE,
    STRATEGIC,
    WIDGETS,
    configmap,
    create,
    deployment,
    names_for,
    wait_for,
    widget,
)

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
