"""The chart's RBAC against the requests the operator really made in the integration tests.

``make test`` runs the suite with ``RANKOPS_REQUEST_LOG`` set: the integration tier's ``api``
fixture logs every request of the operator (kopf and its own client) with the authorization
attributes a real API server would check (``tests/integration/request_log.py``). pytest
runs ``tests/integration`` before ``tests/unit``, so this module then reads the whole log:

- every request is allowed by the chart's rules, cluster-wide and namespaced installs alike,
  evaluated as RBAC does (a ClusterRole bound cluster-wide applies everywhere, a Role in its
  namespace only; discovery paths are everyone's through ``system:discovery``);
- every verb on every resource the chart grants cluster-wide (high availability on, so the
  peering rules too) was used by some request.

Run alone (no log), it skips and says how to get one: ``make rbac-check``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rankops.sandbox.rbac import RequestAttributes, allows, request_attributes, rule_grants
from tests.chart_support import rbac_render_rules
from tests.integration.harness import PROMETHEUS_BIN

LOG = os.environ.get("RANKOPS_REQUEST_LOG", "")
# The default ClusterRole system:discovery (bound to system:authenticated) grants these GETs.
DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/version/",
]


def load_log() -> list[RequestAttributes]:
    if not LOG or not Path(LOG).is_file() or Path(LOG).stat().st_size == 0:
        pytest.skip(
            "no request log: run the integration tests with RANKOPS_REQUEST_LOG=PATH first "
            "(`make test` and `make rbac-check` do)"
        )
    return [
        RequestAttributes.from_json(json.loads(line)) for line in Path(LOG).read_text().splitlines() if line
    ]


def discovery(attrs: RequestAttributes) -> bool:
    return attrs.verb == "get" and rule_grants({"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}, attrs)


def test_rbac_evaluation_matches_kubernetes() -> None:
    """The evaluator the checks rely on, on requests whose answer is known."""
    rules = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]
    assert allows(rules, request_attributes("GET", "/apis/apps/v1/namespaces/a/deployments"))
    assert allows(rules, request_attributes("GET", "/apis/apps/v1/deployments/x"))
    assert not allows(rules, request_attributes("GET", "/apis/apps/v1/namespaces/a/deployments?watch=true"))
    assert not allows(rules, request_attributes("PATCH", "/apis/apps/v1/namespaces/a/deployments/x"))
    assert not allows(rules, request_attributes("GET", "/apis/apps/v1/namespaces/a/deployments/x/status"))
    assert not allows(rules, request_attributes("GET", "/api/v1/namespaces/a/services"))
    status = request_attributes("PATCH", "/apis/rankops.dev/v1alpha1/namespaces/a/rankingmodels/m/status")
    assert (status.verb, status.resource_with_sub, status.namespace) == ("patch", "rankingmodels/status", "a")
    assert request_attributes("DELETE", "/api/v1/namespaces/a/pods").verb == "deletecollection"
    assert discovery(request_attributes("GET", "/apis/rankops.dev/v1alpha1"))
    assert not discovery(request_attributes("GET", "/metrics"))


def _allowed(install: dict[str, Any], attrs: RequestAttributes) -> bool:
    if not attrs.is_resource_request:
        return discovery(attrs)
    if allows(install["cluster"], attrs):
        return True
    return bool(attrs.namespace) and allows(install["namespaces"].get(attrs.namespace, []), attrs)


# Resources without a namespace: any other request without one is a cluster-wide list or
# watch, made only by an operator running cluster-wide (the namespaced install runs with
# --namespace=..., so it never makes them).
CLUSTER_SCOPED = {"namespaces", "customresourcedefinitions", "clusterkopfpeerings"}


# High availability on: the peering rules are part of what is checked (tests/integration/test_peering.py).
HA = {"highAvailability": {"enabled": True}, "replicaCount": 2}


def cluster_wide_only(attrs: RequestAttributes) -> bool:
    if attrs.resource == "clusterkopfpeerings":  # a namespaced operator peers in kopfpeerings
        return True
    return attrs.is_resource_request and not attrs.namespace and attrs.resource not in CLUSTER_SCOPED


@pytest.mark.parametrize("watch_namespaces", [[], ["default"]], ids=["cluster-wide", "namespaced"])
def test_every_operator_request_is_allowed_by_the_chart(watch_namespaces: list[str]) -> None:
    log = load_log()
    if watch_namespaces:
        log = [a for a in log if not cluster_wide_only(a)]
    install = rbac_render_rules({**HA, "watchNamespaces": watch_namespaces})
    denied = sorted(
        {
            f"{a.verb} {a.api_group or 'core'}/{a.resource_with_sub} (namespace {a.namespace or '-'})"
            for a in log
            if not _allowed(install, a)
        }
    )
    assert not denied, f"the chart's RBAC would deny these operator requests: {denied}"


def test_nothing_granted_that_no_test_used() -> None:
    log = load_log()
    if not os.access(PROMETHEUS_BIN, os.X_OK):  # the rollout scenarios skipped: the log is partial
        pytest.skip(f"needs the Prometheus-backed integration tests in the log ({PROMETHEUS_BIN} missing)")
    used = {(a.api_group, a.resource_with_sub, a.verb) for a in log if a.is_resource_request}
    granted = {
        (group, resource, verb)
        for rule in rbac_render_rules(HA)["cluster"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    unused = sorted(granted - used)
    assert not unused, f"granted but never used by the operator in the integration tests: {unused}"
