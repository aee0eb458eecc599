"""CRDs (serving, validation, defaults, pruning, CEL) and server-side printing (Tables).

Checked against what a real API server answers (see ``__init__``)."""

from __future__ import annotations

import json

import httpx

from rankops.sandbox.schema import validate_custom_resource
from tests.integration.apiserver.support import (
    GADGET_CRD,
    GROUP,
    MERGE,
    TABLE,
    WIDGET_CRD,
    WIDGETS,
    configmap,
    create,
    widget,
)

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
