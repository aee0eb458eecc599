"""The quality watch end to end on one machine, for the integration tests and the
breach-to-action benchmark: stand-in serving pods (``ndcg_exporter.py``, which also answer the
runbook's cache invalidation) reachable through EndpointSlices, a real Prometheus evaluating
the alert rules rankops compiles, a real Alertmanager delivering to the operator's receiver,
and the QualitySLO controller consuming its alerts (optionally on a timer too).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf

from rankops.operator.adapters.kube import KubeClient
from rankops.operator.adapters.prometheus import PrometheusMetricsSource
from rankops.operator.controllers.alerts import AlertReceiver, TokenFile, start_receiver
from rankops.operator.controllers.qualityslo import QualitySLOController
from rankops.operator.core.events import Event
from rankops.operator.core.slo.alert_rules import rule_file, rule_group
from rankops.operator.core.slo.policy import parse_live_slo
from rankops.sandbox.registry import ResourceType
from tests.integration.alerting_harness import Alertmanager, RulingPrometheus
from tests.integration.harness import Exporter, free_port

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
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "QualitySLO",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "objectives": [
                {
                    "name": "ndcg",
                    "metric": "ndcg_at_3",
                    "target": 0.70,
                    "breach": 0.65,
                    "window": window,
                    "severityTiers": [
                        {"name": "P0", "below": 0.5},
                        {"name": "P1", "below": 0.6},
                        {"name": "P2", "below": 0.7},
                    ],
                }
            ],
            "evaluation": {"interval": "1h", "minSamples": 10},
            "alerting": {"for": for_},
            "remediation": {"settle": settle, "cooldown": "10m", "maxAttempts": 1},
        },
    }


@dataclass
class QualityStack:
    prometheus: RulingPrometheus
    alertmanager: Alertmanager
    receiver: AlertReceiver
    controller: QualitySLOController
    client: KubeClient
    metrics: PrometheusMetricsSource
    receiver_port: int = 0
    events: list[tuple[str, str, str, str]] = field(default_factory=list)
    timer: asyncio.Task[None] | None = None
    token_file: Path | None = None

    def operator_env(self) -> dict[str, str]:
        """The operator's own receiver on this stack's port (``in_operator=True``)."""
        assert self.token_file is not None
        return {
            "RANKOPS_ALERTS_PORT": str(self.receiver_port),
            "RANKOPS_ALERTS_HOST": "127.0.0.1",
            "RANKOPS_ALERTS_TOKEN_FILE": str(self.token_file),
        }

    def install_rules(self, slo: dict[str, Any], models: list[str]) -> None:
        """What `rankops slo rules NAME` prints, loaded into this Prometheus."""
        group = rule_group(slo["metadata"]["name"], NAMESPACE, parse_live_slo(slo["spec"]), models)
        self.prometheus.set_rules(rule_file([group]))

    def poll(self, slo: str) -> None:
        """The polling path: the controller's own per-SLO timer (``spec.evaluation.interval``)."""
        self.timer = asyncio.get_running_loop().create_task(
            self.controller.run_timer(NAMESPACE, slo, asyncio.sleep, lambda: False)
        )

    def reasons(self, name: str) -> list[str]:
        return [reason for obj, _, reason, _ in self.events if obj == name]


@contextlib.asynccontextmanager
async def quality_stack(
    api: Any,
    exporters: list[Exporter],
    tmp_path: Path,
    *,
    scrape: str = "1s",
    evaluation: str = "1s",
    group_wait: str = "1s",
    in_operator: bool = False,
) -> AsyncIterator[QualityStack]:
    """Prometheus + Alertmanager + receiver + controller; everything stopped on exit. With
    ``in_operator`` the receiver and the controller are the operator's (start it with
    ``stack.operator_env()``): this process runs neither."""
    serve_endpoint_slices(api)
    token = tmp_path / "alert-token"
    token.write_text("integration-token")
    client = KubeClient(lambda: kopf.ConnectionInfo(server=api.url))
    events: list[tuple[str, str, str, str]] = []

    def post_event(obj: Any, event: Event) -> None:
        events.append((str(obj["metadata"]["name"]), event.type, event.reason, event.message))

    async def model_exists(namespace: str, name: str) -> bool:
        return api.get_object("rankingmodels", name, namespace) is not None

    receiver = AlertReceiver(TokenFile(token).read, model_exists)
    port = free_port()
    runner = None if in_operator else await start_receiver(receiver, "127.0.0.1", port)
    am = await asyncio.to_thread(
        Alertmanager, f"http://127.0.0.1:{port}/v1/alerts", token, group_wait=group_wait, repeat_interval="1h"
    )
    prometheus = await asyncio.to_thread(
        RulingPrometheus, [e.address for e in exporters], am.url, None,
        scrape_interval=scrape, evaluation_interval=evaluation, labels={"namespace": NAMESPACE},
    )  # fmt: skip
    await asyncio.to_thread(prometheus.wait_up, len(exporters))
    metrics = PrometheusMetricsSource(prometheus.url, timeout=3)
    controller = QualitySLOController(client, metrics, post_event=post_event)
    stack = QualityStack(
        prometheus, am, receiver, controller, client, metrics, port, events, token_file=token
    )
    consumer = (
        None if in_operator else asyncio.get_running_loop().create_task(controller.consume_alerts(receiver))
    )
    try:
        yield stack
    finally:
        for task in (consumer, stack.timer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await controller.notifier.close()
        await metrics.close()
        await client.close()
        if runner is not None:
            await runner.cleanup()
        await asyncio.to_thread(prometheus.stop)
        await asyncio.to_thread(am.stop)
