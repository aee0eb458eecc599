"""The official kubernetes client and kubectl against the server.

Checked against what a real API server answers (see ``__init__``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.apiserver.support import (
    GROUP,
    MERGE,
    WIDGETS,
    create,
    deployment,
    widget,
)

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
