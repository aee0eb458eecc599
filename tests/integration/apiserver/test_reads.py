"""Reads: selectors, lists, pagination, watches, errors.

Checked against what a real API server answers (see ``__init__``)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.apiserver.support import (
    MERGE,
    configmap,
    create,
    names_for,
    wait_for,
    watch_lines,
)

# ============================================================================================
# 2. Reads: selectors, lists, watches, errors


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
