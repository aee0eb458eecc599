"""PrometheusRule objects written where monitoring.coreos.com/v1 is served, skipped where not."""

from __future__ import annotations

from typing import Any

import kopf

from rankops.operator.adapters.kube import KubeClient
from rankops.operator.adapters.rules import PrometheusRuleWriter, rule_path
from rankops.operator.core.slo.alert_rules import prometheus_rule, rule_group
from rankops.operator.core.slo.objectives import DEFAULT_OBJECTIVES
from rankops.operator.core.slo.policy import LiveSLO
from rankops.sandbox.apiserver import SandboxAPIServer

# The Prometheus Operator's CRD, cut to what matters here (its real schema is large).
PROMETHEUS_RULE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "PrometheusRule",
            "plural": "prometheusrules",
            "singular": "prometheusrule",
            "listKind": "PrometheusRuleList",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


def desired(models: list[str]) -> dict[str, Any]:
    group = rule_group("q", "default", LiveSLO(objectives=DEFAULT_OBJECTIVES[:2]), models)
    return prometheus_rule("q", "default", group)


async def test_written_where_served_and_idempotent() -> None:
    async with SandboxAPIServer(crds=[PROMETHEUS_RULE_CRD]) as api:
        client = KubeClient(lambda: kopf.ConnectionInfo(server=api.url))
        writer = PrometheusRuleWriter(client)
        try:
            assert await writer.apply(desired(["a"])) == "created"
            writes = client.writes
            assert await writer.apply(desired(["a"])) == "unchanged"
            assert client.writes == writes  # nothing changed, nothing written
            assert await writer.apply(desired(["a", "b"])) == "updated"
            stored = await client.get(rule_path("default", "rankops-slo-q"))
            assert stored is not None and stored["spec"] == desired(["a", "b"])["spec"]
            await writer.delete("default", "rankops-slo-q")
            assert await client.get(rule_path("default", "rankops-slo-q")) is None
        finally:
            await client.close()


async def test_nothing_fails_where_the_prometheus_operator_is_absent() -> None:
    clock = [0.0]
    async with SandboxAPIServer(crds=[]) as api:
        client = KubeClient(lambda: kopf.ConnectionInfo(server=api.url))
        writer = PrometheusRuleWriter(client, recheck_s=60, clock=lambda: clock[0])
        try:
            assert await writer.apply(desired(["a"])) == "unserved"
            assert await writer.apply(desired(["a"])) == "unserved"
            await writer.delete("default", "rankops-slo-q")
            assert client.writes == 0
            # installed later: noticed at the next discovery, no restart
            await client.create(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", PROMETHEUS_RULE_CRD
            )
            await api.settle(0.2)
            assert await writer.apply(desired(["a"])) == "unserved"  # remembered until recheck_s
            clock[0] = 61.0
            assert await writer.apply(desired(["a"])) == "created"
        finally:
            await client.close()
