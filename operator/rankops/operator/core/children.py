"""Desired child objects of a RankingModel, as plain dicts. Pure and deterministic.

Public API (used by the kopf shell):

- ``build_children(meta, spec, state) -> list[dict]``: every child the model should have
  now, in the order to apply them: Deployments ``<m>-stable``, ``<m>-canary``; Services
  ``<m>``, ``<m>-stable``, ``<m>-canary``; and, with Gateway API routing, the ``HTTPRoute``:
  last while it sends the canary traffic (after the canary Deployment is scaled for it),
  first when it sends the canary nothing (a rollback takes the traffic off the canary before
  the canary's pods are scaled down).
  ``meta`` is the RankingModel's metadata (``name``, ``namespace``, ``uid``), ``spec`` the
  ``RankingModelSpec``, ``state`` the planned ``RolloutState`` (``Plan.state``; any object with
  the ``TrackState`` attributes: an empty state before the first plan, the spec version is then
  stable).
- ``track_replicas(spec, state) -> TrackPlan`` (versions, URIs, replicas per track, weight).
- ``build_deployment``, ``build_service``, ``build_httproute``, ``owner_reference``,
  ``common_labels``, ``selector_labels`` for callers that need one piece.

What the children look like: owner reference to the RankingModel (``controller`` and
``blockOwnerDeletion`` true); labels ``app.kubernetes.io/name=<m>``,
``app.kubernetes.io/managed-by=rankops``, ``rankops.dev/track`` and ``rankops.dev/version``
(the shared Service ``<m>`` and the HTTPRoute carry no track); Deployment selectors are
``name`` + ``track`` only (selectors are immutable, versions change). Pods: env
``RANKOPS_MODEL``, ``RANKOPS_VERSION``, ``RANKOPS_TRACK``, ``RANKOPS_MODEL_URI``,
``RANKOPS_PORT`` (and ``RANKOPS_FEEDBACK_LOG`` from ``spec.retrain.trainer.feedbackLog``)
then the user's env; Pod Security "restricted" (non-root uid 10001,
read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp
``RuntimeDefault``, no service-account token); an ``emptyDir`` on ``/tmp``; readiness
``/readyz``, liveness ``/healthz``, a startup probe for slow model loads; Prometheus scrape
annotations on port ``http`` path ``/metrics``.

Replicas: outside a rollout the stable track runs ``serving.replicas`` and the canary 0 (or
``serving.replicas`` while ``canaryDraining`` after a promotion, with the route's canary share
``canaryWeight`` behind an HTTPRoute, 0 otherwise); during a rollout the split
comes from ``routing.desired_replicas``. Outside a rollout the canary Deployment carries the
stable version (so a promotion changes no pod template there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rankops.operator.api import (
    API_VERSION,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_TRACK,
    LABEL_VERSION,
    MANAGED_BY,
    RANKING_MODEL,
)

from .routing import desired_replicas, route_weights
from .spec import RankingModelSpec

__all__ = [
    "TrackPlan",
    "TrackState",
    "build_children",
    "build_deployment",
    "build_httproute",
    "build_service",
    "common_labels",
    "owner_reference",
    "selector_labels",
    "track_replicas",
]

CONTAINER_NAME = "ranking"
RUN_AS_USER = 10001


class TrackState(Protocol):
    """What the builders read of the planned state (``rollout.RolloutState`` has it)."""

    @property
    def stable_version(self) -> str | None: ...
    @property
    def stable_uri(self) -> str | None: ...
    @property
    def canary_version(self) -> str | None: ...
    @property
    def canary_uri(self) -> str | None: ...
    @property
    def canary_weight(self) -> int: ...
    @property
    def canary_draining(self) -> bool: ...


@dataclass(frozen=True)
class TrackPlan:
    stable_version: str
    stable_uri: str
    stable_replicas: int
    canary_version: str
    canary_uri: str
    canary_replicas: int
    canary_weight: int


def owner_reference(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": RANKING_MODEL,
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_labels(name: str, track: str | None = None) -> dict[str, str]:
    labels = {LABEL_NAME: name}
    if track:
        labels[LABEL_TRACK] = track
    return labels


def common_labels(name: str, track: str | None = None, version: str | None = None) -> dict[str, str]:
    labels = {LABEL_NAME: name, LABEL_MANAGED_BY: MANAGED_BY}
    if track:
        labels[LABEL_TRACK] = track
    if version:
        labels[LABEL_VERSION] = version
    return labels


def _metadata(meta: Mapping[str, Any], name: str, labels: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "labels": labels, "ownerReferences": [owner_reference(meta)]}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    return out


def track_replicas(spec: RankingModelSpec, state: TrackState) -> TrackPlan:
    """Versions, URIs and replica counts of both tracks for ``state`` (see module docstring)."""
    replicas = spec.serving.replicas
    stable_version = state.stable_version or spec.model.version
    stable_uri = state.stable_uri or spec.model.uri
    if state.canary_version:
        split = desired_replicas(spec.rollout.traffic_routing, state.canary_weight, replicas)
        return TrackPlan(
            stable_version=stable_version,
            stable_uri=stable_uri,
            stable_replicas=split.stable,
            canary_version=state.canary_version,
            canary_uri=state.canary_uri or spec.model.uri,
            canary_replicas=split.canary,
            canary_weight=state.canary_weight,
        )
    draining = state.canary_draining
    return TrackPlan(
        stable_version=stable_version,
        stable_uri=stable_uri,
        stable_replicas=replicas,
        canary_version=stable_version,
        canary_uri=stable_uri,
        canary_replicas=replicas if draining else 0,
        # Behind an HTTPRoute a draining canary keeps the route's share until the stable track is ready.
        canary_weight=state.canary_weight if draining else 0,
    )


def build_deployment(
    meta: Mapping[str, Any],
    spec: RankingModelSpec,
    track: str,
    version: str,
    uri: str,
    replicas: int,
) -> dict[str, Any]:
    """The Deployment ``<m>-<track>`` serving ``version`` from ``uri``."""
    name = meta["name"]
    port = spec.serving.port
    env: list[dict[str, Any]] = [
        {"name": "RANKOPS_MODEL", "value": name},
        {"name": "RANKOPS_VERSION", "value": version},
        {"name": "RANKOPS_TRACK", "value": track},
        {"name": "RANKOPS_MODEL_URI", "value": uri},
        {"name": "RANKOPS_PORT", "value": str(port)},
    ]
    # The log the retrain Job reads is the one the pods append their served rankings and
    # feedback to (the RANKOPS_* names are the operator's, so the user cannot set it in env).
    feedback_log = spec.retrain.trainer.feedback_log if spec.retrain else None
    if feedback_log:
        env.append({"name": "RANKOPS_FEEDBACK_LOG", "value": feedback_log})
    env.extend(dict(e) for e in spec.serving.env)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.serving.image,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if spec.serving.resources:
        container["resources"] = dict(spec.serving.resources)
    labels = common_labels(name, track, version)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(meta, f"{name}-{track}", labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(name, track)},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def build_service(
    meta: Mapping[str, Any],
    spec: RankingModelSpec,
    track: str | None,
    version: str | None = None,
) -> dict[str, Any]:
    """Service ``<m>`` (both tracks, ``track=None``) or ``<m>-<track>``."""
    name = meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(
            meta, f"{name}-{track}" if track else name, common_labels(name, track, version)
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name, track),
            "ports": [{"name": "http", "port": spec.serving.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_httproute(meta: Mapping[str, Any], spec: RankingModelSpec, canary_weight: int) -> dict[str, Any]:
    """The Gateway API route splitting traffic between ``<m>-stable`` and ``<m>-canary``.

    Without ``gateway`` in the spec, ``parentRefs`` is not set (and so not compared by
    ``needs_update``): whoever created the route attaches it.
    """
    routing = spec.rollout.traffic_routing
    if routing.kind != "gatewayAPI" or not routing.http_route:
        raise ValueError("build_httproute needs trafficRouting.gatewayAPI")
    name = meta["name"]
    weights = route_weights(canary_weight)
    port = spec.serving.port
    route_spec: dict[str, Any] = {
        "rules": [
            {
                "backendRefs": [
                    {
                        "group": "",
                        "kind": "Service",
                        "name": f"{name}-stable",
                        "port": port,
                        "weight": weights.stable,
                    },
                    {
                        "group": "",
                        "kind": "Service",
                        "name": f"{name}-canary",
                        "port": port,
                        "weight": weights.canary,
                    },
                ]
            }
        ]
    }
    if routing.gateway:
        parent: dict[str, Any] = {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": routing.gateway,
        }
        if routing.gateway_namespace:
            parent["namespace"] = routing.gateway_namespace
        route_spec["parentRefs"] = [parent]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(meta, routing.http_route, common_labels(name)),
        "spec": route_spec,
    }


def build_children(
    meta: Mapping[str, Any], spec: RankingModelSpec, state: TrackState
) -> list[dict[str, Any]]:
    """All desired children for ``state`` (module docstring), in the order to apply them."""
    plan = track_replicas(spec, state)
    children: list[dict[str, Any]] = [
        build_deployment(meta, spec, "stable", plan.stable_version, plan.stable_uri, plan.stable_replicas),
        build_deployment(meta, spec, "canary", plan.canary_version, plan.canary_uri, plan.canary_replicas),
        build_service(meta, spec, None),
        build_service(meta, spec, "stable", plan.stable_version),
        build_service(meta, spec, "canary", plan.canary_version),
    ]
    if spec.rollout.traffic_routing.kind == "gatewayAPI":
        route = build_httproute(meta, spec, plan.canary_weight)
        if plan.canary_weight == 0:
            children.insert(0, route)  # traffic off the canary before its pods go
        else:
            children.append(route)  # traffic onto the canary after its Deployment is scaled
    return children
