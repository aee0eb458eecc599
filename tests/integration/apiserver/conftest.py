"""Fixtures of the conformance tests: one sandbox API server per module with the Widget and
Gadget CRDs, an httpx client on it, a fresh namespace per test, and labelled ConfigMaps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.apiserver.support import GADGET_CRD, WIDGET_CRD, configmap, create


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
