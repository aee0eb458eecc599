"""Conformance of the sandbox API server's validating admission with a real API server's.

A recording HTTPS webhook (tests/integration/webhook_support.py, certificates from openssl)
stands for the admission server; requests go over real HTTP to the emulator.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.webhook_support import Certificate, RecordingWebhook, issue_certificate

if shutil.which("openssl") is None:
    pytest.skip("the test certificates are made with openssl (not installed)", allow_module_level=True)

GROUP = "admission.sandbox.rankops.dev"
BASE = f"/apis/{GROUP}/v1/namespaces/default/widgets"
CRD: dict[str, Any] = yaml.safe_load(f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.{GROUP}}}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer, default: 1}}
          status: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
""")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return issue_certificate(tmp_path_factory.mktemp("tls"), ["127.0.0.1", "hooks.webhooks.svc"])


Routes = dict[tuple[str, str, int], tuple[str, int]]


@pytest.fixture
def services() -> Routes:
    """Where the test's Services listen: (namespace, name, port) -> (host, port)."""
    return {}


@pytest.fixture
async def api(services: Routes) -> AsyncIterator[SandboxAPIServer]:
    async with SandboxAPIServer(
        crds=[CRD], resolve_service=lambda ns, name, port: services.get((ns, name, port))
    ) as server:
        yield server


@pytest.fixture
async def webhook(certificate: Certificate) -> AsyncIterator[RecordingWebhook]:
    async with RecordingWebhook(certificate) as hook:
        yield hook


def configuration(client_config: dict[str, Any], **webhook: Any) -> dict[str, Any]:
    entry = {
        "name": "widgets.test.dev",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "timeoutSeconds": 5,
        "rules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["widgets"],
            }
        ],
        "clientConfig": client_config,
        **webhook,
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "widgets"},
        "webhooks": [entry],
    }


def install(api: SandboxAPIServer, hook: RecordingWebhook, cert: Certificate, **webhook: Any) -> None:
    api.create(configuration({"url": hook.url, "caBundle": cert.ca_bundle}, **webhook))


def widget(name: str = "w", labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": meta, "spec": {}}


async def post(
    api: SandboxAPIServer, body: dict[str, Any], path: str = BASE, **params: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api.url) as client:
        return await client.post(path, json=body, params=params)


async def test_the_review_is_what_would_be_stored_and_a_denial_stores_nothing(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate)
    webhook.answer = lambda request: {
        "allowed": False,
        "status": {"code": 403, "message": "size must be even"},
    }
    response = await post(api, widget())
    assert response.status_code == 403
    assert (
        response.json()["message"]
        == 'admission webhook "widgets.test.dev" denied the request: size must be even'
    )
    assert api.get_object(f"widgets.{GROUP}", "w", "default") is None
    [review] = webhook.reviews
    assert webhook.paths == ["/validate?timeout=5s"]
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    request = review["request"]
    assert request["operation"] == "CREATE" and request["oldObject"] is None and request["dryRun"] is False
    assert request["kind"] == {"group": GROUP, "version": "v1", "kind": "Widget"}
    assert request["resource"] == {"group": GROUP, "version": "v1", "resource": "widgets"}
    assert (request["namespace"], request["name"]) == ("default", "w")
    assert request["object"]["spec"] == {"size": 1}  # defaulted, as a real server sends it
    assert request["object"]["metadata"]["uid"] and request["userInfo"]["username"]
    assert request["options"]["kind"] == "CreateOptions"


async def test_a_code_below_400_is_raised_to_400_and_no_message_says_so(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate)
    webhook.answer = lambda request: {"allowed": False}
    response = await post(api, widget())
    assert response.status_code == 400
    assert (
        response.json()["message"]
        == 'admission webhook "widgets.test.dev" denied the request without explanation'
    )


async def test_admitted_with_warnings_as_warning_headers(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate)
    webhook.answer = lambda request: {"allowed": True, "warnings": ["the QualitySLO does not exist yet"]}
    response = await post(api, widget())
    assert response.status_code == 201
    assert response.headers["Warning"] == '299 - "the QualitySLO does not exist yet"'
    assert api.get_object(f"widgets.{GROUP}", "w", "default") is not None


async def test_updates_and_patches_carry_the_old_object_and_status_writes_are_not_sent(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate)
    assert (await post(api, widget())).status_code == 201
    async with httpx.AsyncClient(base_url=api.url) as client:
        patched = await client.patch(
            f"{BASE}/w",
            content='{"spec": {"size": 3}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patched.status_code == 200
        status = await client.patch(
            f"{BASE}/w/status",
            content='{"status": {"phase": "Ready"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert status.status_code == 200
    assert [r["request"]["operation"] for r in webhook.reviews] == ["CREATE", "UPDATE"]
    update = webhook.reviews[1]["request"]
    assert update["oldObject"]["spec"] == {"size": 1} and update["object"]["spec"] == {"size": 3}
    assert update["options"]["kind"] == "UpdateOptions"

    webhook.answer = lambda request: {"allowed": False, "status": {"message": "frozen"}}
    async with httpx.AsyncClient(base_url=api.url) as client:
        refused = await client.patch(
            f"{BASE}/w",
            content='{"spec": {"size": 5}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
    assert refused.status_code == 400
    stored = api.get_object(f"widgets.{GROUP}", "w", "default")
    assert stored is not None and stored["spec"] == {"size": 3} and stored["status"] == {"phase": "Ready"}


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
async def test_an_unreachable_webhook_fails_closed_or_open(
    api: SandboxAPIServer, certificate: Certificate, policy: str
) -> None:
    api.create(
        configuration(
            {"url": "https://127.0.0.1:9/validate", "caBundle": certificate.ca_bundle}, failurePolicy=policy
        )
    )
    response = await post(api, widget())
    if policy == "Ignore":
        assert response.status_code == 201
        return
    assert response.status_code == 500
    body = response.json()
    assert body["reason"] == "InternalError"
    assert body["message"].startswith(
        'Internal error occurred: failed calling webhook "widgets.test.dev": failed to call webhook: '
        'Post "https://127.0.0.1:9/validate?timeout=5s": '
    )
    assert api.get_object(f"widgets.{GROUP}", "w", "default") is None


async def test_the_ca_bundle_is_verified(
    api: SandboxAPIServer, webhook: RecordingWebhook, tmp_path: Path
) -> None:
    other = issue_certificate(tmp_path, ["127.0.0.1"])
    api.create(configuration({"url": webhook.url, "caBundle": other.ca_bundle}))
    response = await post(api, widget())
    assert response.status_code == 500
    assert "certificate verify failed" in response.json()["message"]
    assert not webhook.reviews


async def test_past_timeout_seconds_the_call_fails(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate, timeoutSeconds=1)
    webhook.delay = 3
    started = time.monotonic()
    response = await post(api, widget())
    assert time.monotonic() - started < 2.5
    assert response.status_code == 500
    assert response.json()["message"].endswith('?timeout=1s": context deadline exceeded')


async def test_an_answer_for_another_request_is_a_failed_call(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate)
    webhook.raw = lambda review: {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "someone-else", "allowed": True},
    }
    response = await post(api, widget())
    assert response.status_code == 500
    assert 'expected response.uid="' in response.json()["message"]


async def test_namespace_and_object_selectors(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(
        api,
        webhook,
        certificate,
        namespaceSelector={
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a"]}
            ]
        },
        objectSelector={"matchLabels": {"validate": "yes"}},
    )
    for ns in ("team-a", "team-b"):
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    path = f"/apis/{GROUP}/v1/namespaces/%s/widgets"
    assert (await post(api, widget("a1", {"validate": "yes"}), path % "team-a")).status_code == 201
    assert (await post(api, widget("a2", {"validate": "no"}), path % "team-a")).status_code == 201
    assert (await post(api, widget("b1", {"validate": "yes"}), path % "team-b")).status_code == 201
    assert [r["request"]["name"] for r in webhook.reviews] == ["a1"]


async def test_dry_run_needs_a_webhook_without_side_effects(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate)
    response = await post(api, widget(), dryRun="All")
    assert response.status_code == 201
    assert webhook.reviews[0]["request"]["dryRun"] is True
    assert api.get_object(f"widgets.{GROUP}", "w", "default") is None
    api.delete_object("validatingwebhookconfigurations", "widgets")
    install(api, webhook, certificate, sideEffects="Unknown")
    response = await post(api, widget(), dryRun="All")
    assert response.status_code == 400
    assert response.json()["message"] == 'admission webhook "widgets.test.dev" does not support dry run'


async def test_a_service_reference_is_verified_against_its_dns_name(
    api: SandboxAPIServer, services: Routes, tmp_path: Path
) -> None:
    dns_only = issue_certificate(tmp_path, ["hooks.webhooks.svc"])  # no IP: the name must be checked
    service = {"namespace": "webhooks", "name": "hooks", "path": "/validate/widgets", "port": 8443}
    api.create(configuration({"service": service, "caBundle": dns_only.ca_bundle}))
    response = await post(api, widget("before"))
    assert response.status_code == 500
    assert response.json()["message"].endswith(
        'Post "https://hooks.webhooks.svc:8443/validate/widgets?timeout=5s": '
        'no endpoints available for service "hooks"'
    )
    async with RecordingWebhook(dns_only) as webhook:
        services[("webhooks", "hooks", 8443)] = ("127.0.0.1", webhook.port)
        assert (await post(api, widget("after"))).status_code == 201
    assert webhook.paths == ["/validate/widgets?timeout=5s"]


async def test_delete_is_sent_with_the_old_object_only(
    api: SandboxAPIServer, webhook: RecordingWebhook, certificate: Certificate
) -> None:
    install(api, webhook, certificate)
    assert (await post(api, widget())).status_code == 201
    api.delete_object("validatingwebhookconfigurations", "widgets")
    config = configuration({"url": webhook.url, "caBundle": certificate.ca_bundle})
    config["webhooks"][0]["rules"][0]["operations"] = ["DELETE"]
    api.create(config)
    webhook.answer = lambda request: {"allowed": False, "status": {"code": 403, "message": "keep it"}}
    async with httpx.AsyncClient(base_url=api.url) as client:
        response = await client.delete(f"{BASE}/w")
    assert response.status_code == 403
    request = webhook.reviews[-1]["request"]
    assert request["operation"] == "DELETE" and request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "w"
    assert api.get_object(f"widgets.{GROUP}", "w", "default") is not None
