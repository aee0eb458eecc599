"""The operator's validating webhook, end to end, as the Helm chart installs it.

The chart is rendered with ``webhook.enabled`` (its Helm-generated CA and serving certificate,
its ValidatingWebhookConfiguration pointing at the webhook Service); the real operator runs as a
process (``rankops operator run``) serving kopf's WebhookServer with the chart's certificate;
the sandbox API server calls the webhook through the Service reference (routed to the
operator's loopback port, TLS verified against ``rankops-webhook.rankops-system.svc`` with the
chart's caBundle), as a real API server would.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chart_support import NAMESPACE as RELEASE_NAMESPACE
from tests.chart_support import render
from tests.integration.conftest import NAMESPACE, quality_slo, ranking_model
from tests.integration.harness import crd_manifests
from tests.integration.request_log import record_operator_requests

pytest.importorskip("helm_python", reason="helm-python-sdk renders the chart's webhook objects")

DEAD_PROMETHEUS = "http://127.0.0.1:9"
API = f"/apis/rankops.dev/v1alpha1/namespaces/{NAMESPACE}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chart_webhook() -> dict[str, Any]:
    objects = render({"webhook": {"enabled": True}})
    by_kind = {
        o["kind"]: o for o in objects if o["kind"] in ("Secret", "Service", "ValidatingWebhookConfiguration")
    }
    assert set(by_kind) == {"Secret", "Service", "ValidatingWebhookConfiguration"}, sorted(by_kind)
    return by_kind


@pytest.fixture
def webhook_port() -> int:
    return free_port()


@pytest.fixture
def api(chart_webhook: dict[str, Any], webhook_port: int, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The sandbox API server with the chart's webhook Service routed to the operator's port."""
    from rankops.sandbox.apiserver import SandboxAPIServer

    service = chart_webhook["Service"]["metadata"]
    routes = {(service["namespace"], service["name"], 443): ("127.0.0.1", webhook_port)}
    with SandboxAPIServer.in_thread(
        crds=crd_manifests(),
        simulate_workloads=True,
        resolve_service=lambda ns, name, port: routes.get((ns, name, port)),
    ) as server:
        yield server
        record_operator_requests(server, request.node.nodeid)


@pytest.fixture
def admitting_operator(
    api: Any, operator: Callable[..., Any], chart_webhook: dict[str, Any], webhook_port: int, tmp_path: Path
) -> Any:
    secret = chart_webhook["Secret"]["data"]
    certs = tmp_path / "webhook"
    certs.mkdir()
    for key in ("tls.crt", "tls.key"):
        (certs / key).write_bytes(base64.b64decode(secret[key]))
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NAMESPACE}})
    api.create(chart_webhook["ValidatingWebhookConfiguration"])
    handle = operator(
        DEAD_PROMETHEUS,
        process=True,
        RANKOPS_WEBHOOK_PORT=str(webhook_port),
        RANKOPS_WEBHOOK_CERT_DIR=str(certs),
        RANKOPS_WEBHOOK_HOST="127.0.0.1",
    )
    # failurePolicy Fail: until kopf serves the webhook every write is a 500 "failed calling webhook"
    probe = {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "QualitySLO",
        "metadata": {"name": "probe"},
        "spec": {"objectives": [{"name": "ndcg", "metric": "ndcg_at_3"}]},
    }
    deadline = time.monotonic() + 60
    while True:
        response = httpx.post(f"{api.url}{API}/qualityslos", json=probe, params={"dryRun": "All"})
        if response.status_code == 201:
            return handle
        assert response.status_code == 500 and "failed calling webhook" in response.text, response.text
        assert time.monotonic() < deadline, f"the webhook was never served: {response.text}"
        time.sleep(0.3)


def window(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "schedule": "0 2 * * *",
            "timeZone": "Europe/Berlin",
            "duration": "2h",
            "tasks": [{"name": "backup", "type": "Backup", "backup": {"destination": "file:///backups"}}],
            **spec,
        },
    }


def post(api: Any, plural: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{api.url}{API}/{plural}", json=body, timeout=30)


def test_bad_objects_are_refused_with_the_webhooks_message_and_good_ones_admitted(
    api: Any, admitting_operator: Any, model_name: str
) -> None:
    refused = post(api, "maintenancewindows", window("nightly", timeZone="Europe/Pariss"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["message"] == (
        'admission webhook "maintenancewindows.validate.rankops.dev" denied the request: '
        "spec.timeZone: unknown time zone 'Europe/Pariss'"
    )
    refused = post(api, "maintenancewindows", window("nightly", schedule="0 0 31 2 *"))
    assert refused.status_code == 422 and "never matches" in refused.json()["message"], refused.text
    assert api.get_object("maintenancewindows", "nightly", NAMESPACE) is None
    assert post(api, "maintenancewindows", window("nightly")).status_code == 201

    slo = quality_slo("ndcg")
    slo["spec"]["objectives"].append(
        {
            "name": "p95",
            "metric": "custom",
            "query": "histogram_quantile(0.95, rate(x[$window])",
            "direction": "lowerIsBetter",
            "target": 0.25,
            "breach": 0.5,
        }
    )
    refused = post(api, "qualityslos", slo)
    assert refused.status_code == 422
    assert "spec.objectives[1].query: not valid PromQL" in refused.json()["message"], refused.text
    assert api.get_object("qualityslos", "ndcg", NAMESPACE) is None

    # A model whose QualitySLO is not there yet is admitted, with a warning.
    admitted = post(api, "rankingmodels", ranking_model(model_name, slo="ndcg"))
    assert admitted.status_code == 201, admitted.text
    assert "QualitySLO default/ndcg does not exist (yet)" in admitted.headers.get("Warning", "")


def test_a_refused_update_changes_nothing_and_the_operators_own_writes_pass(
    api: Any, admitting_operator: Any, model_name: str
) -> None:
    assert post(api, "qualityslos", quality_slo("ndcg")).status_code == 201
    created = post(api, "rankingmodels", ranking_model(model_name, slo="ndcg"))
    assert created.status_code == 201 and "Warning" not in created.headers, created.headers
    # kopf's finalizer and annotations go through the webhook (an UPDATE without a spec change)
    deadline = time.monotonic() + 60
    while (
        not (api.get_object("rankingmodels", model_name, NAMESPACE) or {})
        .get("metadata", {})
        .get("finalizers")
    ):
        assert time.monotonic() < deadline, "the operator never added its finalizer"
        time.sleep(0.2)
    before = api.get_object("rankingmodels", model_name, NAMESPACE)
    patch = {"spec": {"model": {"version": "1.1.0", "uri": "s4://models/1.1.0"}}}
    refused = httpx.patch(
        f"{api.url}{API}/rankingmodels/{model_name}",
        content=json.dumps(patch),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["message"] == (
        'admission webhook "rankingmodels.validate.rankops.dev" denied the request: '
        "spec.model.uri: unknown storage protocol 's4' in 's4://models/1.1.0' "
        "(fsspec URIs such as file:///path, s3://bucket/key, gs://bucket/key)"
    )
    after = api.get_object("rankingmodels", model_name, NAMESPACE)
    assert (
        after["spec"] == before["spec"]
        and after["metadata"]["generation"] == before["metadata"]["generation"]
    )
    # deleting it is never blocked: the finalizer's removal is an UPDATE without a spec change
    httpx.delete(f"{api.url}{API}/rankingmodels/{model_name}").raise_for_status()
    deadline = time.monotonic() + 60
    while api.get_object("rankingmodels", model_name, NAMESPACE) is not None:
        assert time.monotonic() < deadline, "the finalizer was never removed"
        time.sleep(0.2)
