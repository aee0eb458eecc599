"""rankops.sandbox.patching: merge, JSON and server-side-apply patches."""

from __future__ import annotations

import pytest

from rankops.sandbox import patching


def test_json_merge_patch() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    assert patching.json_merge_patch(target, {"b": {"c": None, "e": 4}, "l": [3]}) == {
        "a": 1,
        "b": {"d": 3, "e": 4},
        "l": [3],
    }
    assert target["b"] == {"c": 2, "d": 3}


def test_json_patch_and_errors() -> None:
    doc = {"spec": {"x": 1}}
    assert patching.apply_patch(doc, patching.JSON, [{"op": "replace", "path": "/spec/x", "value": 2}]) == {
        "spec": {"x": 2}
    }
    with pytest.raises(patching.PatchError):
        patching.apply_patch(doc, patching.JSON, [{"op": "remove", "path": "/nope"}])
    with pytest.raises(patching.PatchError):
        patching.apply_patch(doc, patching.JSON, {"not": "a list"})


def test_strategic_merge_is_a_merge_patch() -> None:
    assert patching.apply_patch({"a": {"b": 1}}, patching.STRATEGIC, {"a": {"c": 2}}) == {
        "a": {"b": 1, "c": 2}
    }


def test_server_side_apply_merges_lists_by_name_and_drops_released_fields() -> None:
    first = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "x"},
        "spec": {"a": 1, "b": 2, "containers": [{"name": "c", "image": "i1"}]},
    }
    live = patching.server_side_apply(None, first, "mgr")
    live["spec"]["containers"].append({"name": "sidecar", "image": "s"})  # another writer's item
    second = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "x"},
        "spec": {"a": 1, "containers": [{"name": "c", "image": "i2"}]},
    }
    result = patching.server_side_apply(live, second, "mgr")
    assert result["spec"]["a"] == 1 and "b" not in result["spec"]
    assert result["spec"]["containers"] == [{"name": "c", "image": "i2"}, {"name": "sidecar", "image": "s"}]
    [entry] = result["metadata"]["managedFields"]
    assert entry["manager"] == "mgr" and entry["operation"] == "Apply"
    assert 'k:{"name":"c"}' in entry["fieldsV1"]["f:spec"]["f:containers"]


def test_fields_owned_by_another_manager_survive() -> None:
    live = patching.server_side_apply(None, {"spec": {"a": 1, "b": 2}}, "one")
    live = patching.server_side_apply(live, {"spec": {"b": 2}}, "two")
    result = patching.server_side_apply(live, {"spec": {"a": 1}}, "one")
    assert result["spec"] == {"a": 1, "b": 2}


def test_apply_conflicts_with_another_owner_unless_forced() -> None:
    live = patching.server_side_apply(None, {"spec": {"replicas": 2, "image": "a"}}, "gitops")
    same = patching.server_side_apply(live, {"spec": {"replicas": 2}}, "operator")  # same value: shared
    assert same["spec"]["replicas"] == 2
    with pytest.raises(patching.ApplyConflict) as info:
        patching.server_side_apply(live, {"spec": {"replicas": 5}}, "operator")
    assert info.value.conflicts == [("gitops", ".spec.replicas")]
    forced = patching.server_side_apply(live, {"spec": {"replicas": 5}}, "operator", force=True)
    owners = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert forced["spec"]["replicas"] == 5
    assert owners["gitops"] == {"f:spec": {"f:image": {}}} and owners["operator"] == {
        "f:spec": {"f:replicas": {}}
    }
