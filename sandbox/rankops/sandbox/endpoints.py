"""The EndpointSlice controller of the sandbox: which pod processes back each Service.

For a Service with a selector, the live pods it selects become endpoints (``ready`` from the
pod's Ready condition, ``targetRef`` the pod, the address its ``status.podIP``). The
Service's ``targetPort`` (a name or a number) resolves, per pod, against the ports its
container declares (a number is taken as it is); pods whose ports differ go in different
slices (as the real controller groups endpoints by their resolved ports), so every slice is
named ``<service>-<port>`` with one port. Slices are owned by their Service and labelled
``kubernetes.io/service-name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rankops.sandbox import objects
from rankops.sandbox.kubelet import pod_address, pod_ports
from rankops.sandbox.objects import Snapshot, pod_ready

__all__ = ["SERVICE_LABEL", "EndpointSliceController"]

MANAGER = "sandbox-endpointslice-controller"
SERVICE_LABEL = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


def _selects(selector: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


class EndpointSliceController:
    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def sync(self, snap: Snapshot) -> None:
        slices_by_service: dict[str, list[dict[str, Any]]] = {}
        for es in snap.of("discovery.k8s.io", "endpointslices"):
            if (es["metadata"].get("labels") or {}).get(MANAGED_BY) == MANAGER:
                for ref in es["metadata"].get("ownerReferences") or []:
                    slices_by_service.setdefault(ref.get("uid", ""), []).append(es)
        for svc in snap.of("", "services"):
            selector = (svc.get("spec") or {}).get("selector")
            if not selector or svc["metadata"].get("deletionTimestamp"):
                continue
            self._sync_one(snap, svc, selector, slices_by_service.get(svc["metadata"]["uid"], []))

    def _sync_one(
        self,
        snap: Snapshot,
        svc: Mapping[str, Any],
        selector: Mapping[str, str],
        existing: list[dict[str, Any]],
    ) -> None:
        meta = svc["metadata"]
        ports = (svc.get("spec") or {}).get("ports") or []
        port = ports[0] if ports else {}
        target = str(port.get("targetPort", port.get("port", "")))
        groups: dict[int, list[dict[str, Any]]] = {}
        for pod in snap.of("", "pods", meta["namespace"]):
            phase = (pod.get("status") or {}).get("phase")
            if pod["metadata"].get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
                continue
            if not _selects(selector, pod):
                continue
            resolved = pod_ports(pod).get(target) or (int(target) if target.isdigit() else None)
            ip = pod_address(pod)
            if resolved is None or ip is None:
                continue
            ready = pod_ready(pod)
            groups.setdefault(resolved, []).append(
                {
                    "addresses": [ip],
                    "conditions": {"ready": ready, "serving": ready, "terminating": False},
                    "nodeName": (pod.get("spec") or {}).get("nodeName", "sandbox"),
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": meta["namespace"],
                        "name": pod["metadata"]["name"],
                        "uid": pod["metadata"]["uid"],
                    },
                }
            )
        wanted = {f"{meta['name']}-{p}": (p, eps) for p, eps in groups.items()}
        by_name = {es["metadata"]["name"]: es for es in existing}
        objects.delete(self.cluster, [es for name, es in by_name.items() if name not in wanted])
        for name, (number, endpoints) in wanted.items():
            body = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": name,
                    "namespace": meta["namespace"],
                    "labels": {SERVICE_LABEL: meta["name"], MANAGED_BY: MANAGER},
                    "ownerReferences": [objects.controller_ref(svc)],
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": [{"name": port.get("name", ""), "port": number, "protocol": "TCP"}],
            }
            current = by_name.get(name)
            if current is None:
                objects.create(self.cluster, body, MANAGER)
            elif current.get("endpoints") != endpoints or current.get("ports") != body["ports"]:
                objects.replace(
                    self.cluster, current, {"endpoints": endpoints, "ports": body["ports"]}, MANAGER
                )
