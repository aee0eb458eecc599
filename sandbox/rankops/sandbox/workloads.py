"""The Deployment and ReplicaSet controllers of the sandbox (pods then run by the kubelet stand-in).

Per Deployment: one ReplicaSet per pod template (``<deployment>-<template hash>``, label
``pod-template-hash``), its Pods owned by it. The RollingUpdate strategy with the defaults'
effect at the sandbox's small replica counts (maxSurge 1, maxUnavailable 0): a new Pod is
added, an old one is removed only once the ready count allows it, so a template change
replaces pods one at a time and never drops below the desired ready count. Unready old pods
go first. ``Recreate`` removes all old pods before new ones start. Status follows the real
controller's fields (``replicas``, ``updatedReplicas``, ``readyReplicas``,
``availableReplicas``, ``unavailableReplicas``, zeros omitted; ``Available`` and
``Progressing`` conditions). DIFFERENCE: ``minReadySeconds``, ``paused``,
``progressDeadlineSeconds`` and percentage surges are not honoured.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rankops.sandbox import objects
from rankops.sandbox.objects import Snapshot, pod_ready, template_hash, utc_now

__all__ = ["DeploymentController"]

MANAGER = "sandbox-deployment-controller"
HASH_LABEL = "pod-template-hash"


def _condition(
    old: list[dict[str, Any]], ctype: str, status: bool, reason: str, message: str
) -> dict[str, Any]:
    text = "True" if status else "False"
    now = utc_now()
    prior = next((c for c in old if c.get("type") == ctype), None)
    since = prior["lastTransitionTime"] if prior and prior.get("status") == text else now
    return {
        "type": ctype,
        "status": text,
        "reason": reason,
        "message": message,
        "lastUpdateTime": prior["lastUpdateTime"] if prior and prior.get("reason") == reason else now,
        "lastTransitionTime": since,
    }


class DeploymentController:
    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def sync(self, snap: Snapshot) -> None:
        for deployment in snap.of("apps", "deployments"):
            if not deployment["metadata"].get("deletionTimestamp"):
                self._sync_one(snap, deployment)
        for rs in snap.of("apps", "replicasets"):
            self._report_replicaset(snap, rs)

    def _sync_one(self, snap: Snapshot, d: Mapping[str, Any]) -> None:
        meta, spec = d["metadata"], d.get("spec") or {}
        template = spec.get("template") or {}
        desired = int(spec.get("replicas", 1))
        pod_hash = template_hash(template)
        sets = snap.owned("apps", "replicasets", meta["uid"])
        new_rs = next((rs for rs in sets if rs["metadata"]["name"] == f"{meta['name']}-{pod_hash}"), None)
        if new_rs is None:
            new_rs = self._create_replicaset(d, pod_hash)
            if new_rs is None:
                return
            sets = [*sets, new_rs]
        old_sets = [rs for rs in sets if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        new_pods = [p for p in snap.owned("", "pods", new_rs["metadata"]["uid"]) if _alive(p)]
        old_pods = [p for rs in old_sets for p in snap.owned("", "pods", rs["metadata"]["uid"]) if _alive(p)]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"

        # Scale the new ReplicaSet's pods toward `desired` (surge of one during a rollout).
        if len(new_pods) > desired:
            objects.delete(self.cluster, _victims(new_pods, len(new_pods) - desired))
            new_pods = _keep(new_pods, len(new_pods) - desired)
        surge = 0 if recreate else 1
        room = desired + surge - len(new_pods) - len(old_pods) if old_pods else desired - len(new_pods)
        if recreate and old_pods:
            room = 0
        for _ in range(max(0, min(desired - len(new_pods), room))):
            pod = self._create_pod(new_rs)
            if pod is not None:
                new_pods.append(pod)

        # Remove old pods: unready ones at once, ready ones while enough pods stay ready.
        if old_pods:
            if recreate:
                objects.delete(self.cluster, old_pods)
                old_pods = []
            else:
                unready = [p for p in old_pods if not pod_ready(p)]
                objects.delete(self.cluster, unready)
                old_pods = [p for p in old_pods if pod_ready(p)]
                ready_total = sum(pod_ready(p) for p in new_pods) + len(old_pods)
                surplus = min(len(old_pods), ready_total - desired)
                if surplus > 0:
                    objects.delete(self.cluster, old_pods[:surplus])
                    old_pods = old_pods[surplus:]
        for rs in sets:
            count = len(new_pods) if rs is new_rs else sum(owns(rs, p) for p in old_pods)
            want = desired if rs is new_rs else count
            rs_spec = copy.deepcopy(rs.get("spec") or {})
            if rs_spec.get("replicas") != want:
                rs_spec["replicas"] = want
                objects.update_spec(self.cluster, rs, rs_spec, MANAGER)
        self._report(d, desired, new_pods, old_pods)

    def _report(
        self,
        d: Mapping[str, Any],
        desired: int,
        new_pods: list[dict[str, Any]],
        old_pods: list[dict[str, Any]],
    ) -> None:
        pods = new_pods + old_pods
        ready = sum(pod_ready(p) for p in pods)
        updated = len(new_pods)
        old = (d.get("status") or {}).get("conditions") or []
        available = ready >= desired
        complete = updated >= desired and not old_pods and sum(pod_ready(p) for p in new_pods) >= desired
        status: dict[str, Any] = {"observedGeneration": d["metadata"].get("generation", 1)}
        counts = {
            "replicas": len(pods),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(0, desired - ready),
        }
        status.update({k: v for k, v in counts.items() if v})  # omitempty, as the real API
        status["conditions"] = [
            _condition(
                old,
                "Available",
                available,
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            _condition(
                old,
                "Progressing",
                True,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                "ReplicaSet has successfully progressed." if complete else "ReplicaSet is progressing.",
            ),
        ]
        objects.write_status(self.cluster, d, status, MANAGER)

    def _report_replicaset(self, snap: Snapshot, rs: Mapping[str, Any]) -> None:
        pods = [p for p in snap.owned("", "pods", rs["metadata"]["uid"]) if _alive(p)]
        ready = sum(pod_ready(p) for p in pods)
        counts = {"replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready}
        status: dict[str, Any] = {"observedGeneration": rs["metadata"].get("generation", 1)}
        status.update({k: v for k, v in counts.items() if v})
        status.setdefault("replicas", 0)
        objects.write_status(self.cluster, rs, status, MANAGER)

    def _create_replicaset(self, d: Mapping[str, Any], pod_hash: str) -> dict[str, Any] | None:
        meta, spec = d["metadata"], d.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(spec.get("selector") or {"matchLabels": {}})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta["namespace"],
                "labels": labels,
                "ownerReferences": [objects.controller_ref(d)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        return objects.create(self.cluster, rs, MANAGER)

    def _create_pod(self, rs: Mapping[str, Any]) -> dict[str, Any] | None:
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        pod_meta = template.get("metadata") or {}
        spec = template.get("spec") or {}
        spec.setdefault("restartPolicy", "Always")
        spec["nodeName"] = "sandbox"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{rs['metadata']['name']}-{objects.random_suffix()}",
                "namespace": rs["metadata"]["namespace"],
                "labels": pod_meta.get("labels") or {},
                "annotations": pod_meta.get("annotations") or {},
                "ownerReferences": [objects.controller_ref(rs)],
            },
            "spec": spec,
        }
        return objects.create(self.cluster, pod, MANAGER)


def owns(owner: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    return objects.owned_by(obj, owner["metadata"]["uid"])


def _alive(pod: Mapping[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


def _victims(pods: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The ``n`` pods to remove first: unready before ready, newest before oldest."""
    newest_first = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    return sorted(newest_first, key=pod_ready)[:n]


def _keep(pods: list[dict[str, Any]], n_removed: int) -> list[dict[str, Any]]:
    gone = {p["metadata"]["uid"] for p in _victims(pods, n_removed)}
    return [p for p in pods if p["metadata"]["uid"] not in gone]
