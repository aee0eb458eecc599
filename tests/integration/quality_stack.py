"""The quality watch end to end on one machine, for the integration tests and the
breach-to-action benchmark: stand-in serving pods (``ndcg_exporter.py``, which also answer the
runbook's cache invalidation) reachable through EndpointSlices, a real Prometheus evaluating
the alert rules rankops compiles, and a real Alertmanager delivering to the operator's receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankops.operator.core.slo.alert_rules import rule_file, rule_group
from rankops.operator.core.slo.policy import parse_live_slo
from rankops.sandbox.registry import ResourceType
from tests.integration.alerting_harness import Alertmanager
from tests.integration.harness import Exporter, Prometheus, free_port
from tests.integration.manifests import ndcg_objective, quality_slo_manifest

NAMESPACE = "default"


def serve_endpoint_slices(api: Any) -> None:
    """Serve discovery.k8s.io/v1 EndpointSlices where this sandbox does not yet (its process
    runtime, which publishes them, is on its way); a no-op once it does."""
    if ("discovery.k8s.io", "v1", "endpointslices") not in api.types:
        api.cluster.register(
            ResourceType(
                "discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, "endpointslice", (), (), ()
            )
        )


def endpoint_slice(service: str, exporter: Exporter, pod: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-{exporter.port}", "namespace": NAMESPACE,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": exporter.port, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "name": pod}}],
    }  # fmt: skip


def slo_manifest(name: str, *, for_: str = "2s", window: str = "10s", settle: str = "3s") -> dict[str, Any]:
    tiers = [{"name": "P0", "below": 0.5}, {"name": "P1", "below": 0.6}, {"name": "P2", "below": 0.7}]
    return quality_slo_manifest(
        name,
        [ndcg_objective(window, severityTiers=tiers)],
        evaluation={"interval": "1h", "minSamples": 10},
        alerting={"for": for_},
        remediation={"settle": settle, "cooldown": "10m", "maxAttempts": 1},
    )


@dataclass
class QualityStack:
    prometheus: Prometheus
    alertmanager: Alertmanager
    receiver_port: int
    token_file: Path

    def operator_env(self) -> dict[str, str]:
        """The operator's receiver on the port Alertmanager delivers to, with the token."""
        return {
            "RANKOPS_ALERTS_PORT": str(self.receiver_port),
            "RANKOPS_ALERTS_HOST": "127.0.0.1",
            "RANKOPS_ALERTS_TOKEN_FILE": str(self.token_file),
        }

    def install_rules(self, slo: dict[str, Any], models: list[str]) -> None:
        """What `rankops slo rules NAME` prints, loaded into this Prometheus."""
        group = rule_group(slo["metadata"]["name"], NAMESPACE, parse_live_slo(slo["spec"]), models)
        self.prometheus.set_rules(rule_file([group]))


@contextlib.asynccontextmanager
async def quality_stack(
    api: Any,
    exporters: list[Exporter],
    tmp_path: Path,
    *,
    scrape: float = 1.0,
    evaluation: float = 1.0,
    group_wait: str = "1s",
) -> AsyncIterator[QualityStack]:
    """Prometheus + Alertmanager delivering to the operator's receiver (start the operator with
    ``stack.operator_env()``: its receiver and QualitySLO controller do the rest); everything
    stopped on exit."""
    serve_endpoint_slices(api)
    token = tmp_path / "alert-token"
    token.write_text("integration-token")
    port = free_port()
    am = await asyncio.to_thread(
        Alertmanager, f"http://127.0.0.1:{port}/v1/alerts", token, group_wait=group_wait, repeat_interval="1h"
    )
    try:
        prometheus = await asyncio.to_thread(
            Prometheus, [e.address for e in exporters], scrape_interval=scrape,
            evaluation_interval=evaluation, labels={"namespace": NAMESPACE}, rules={"groups": []},
            alertmanager=am.url,
        )  # fmt: skip
    except BaseException:
        await asyncio.to_thread(am.stop)
        raise
    try:
        await asyncio.to_thread(prometheus.wait_scraped, *(e.address for e in exporters), timeout=30)
        yield QualityStack(prometheus, am, port, token)
    finally:
        await asyncio.to_thread(prometheus.stop)
        await asyncio.to_thread(am.stop)
