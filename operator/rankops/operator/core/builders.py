"""Desired child objects of a RankingModel, as plain dicts. Pure and deterministic.

Public API (used by the kopf shell):

- ``build_children(meta, spec, status) -> list[dict]``: every child the model should have
  now, in the order to apply them: Deployments ``<m>-stable``, ``<m>-canary``; Services
  ``<m>``, ``<m>-stable``, ``<m>-canary``; and, with Gateway API routing, the ``HTTPRoute``:
  last while it sends the canary traffic (after the canary Deployment is scaled for it),
  first when it sends the canary nothing (a rollback takes the traffic off the canary before
  the canary's pods are scaled down).
  ``meta`` is the RankingModel's metadata (``name``, ``namespace``, ``uid``), ``spec`` a
  ``RankingModelSpec`` (or raw dict), ``status`` the (new) status dict from
  ``Plan.status`` (``{}`` before the first plan: the spec version is then stable).
- ``needs_update(desired, actual) -> bool``: whether ``actual`` (the object read from the
  API server) differs in any field we set in ``desired``; fields we do not set (defaults the
  API server filled in, status, other controllers' annotations) are ignored, and so are
  empty values we set that the API server drops (``""``, ``{}``, ``[]``, ``null``:
  ``omitempty``). Resource quantities (the values under ``limits``/``requests``, and
  ``sizeLimit``) compare by value, as the API server stores them in canonical form
  (``0.5`` -> ``500m``, ``1073741824`` -> ``1Gi``). Apply with a merge patch of ``desired``
  when True, create when absent, and make no write otherwise.
- ``parse_quantity(value) -> Fraction`` (Kubernetes ``resource.Quantity`` syntax, rounded up
  to nano units as the API server does) and ``quantities_equal(a, b)``.
- ``track_replicas(spec, status) -> TrackPlan`` (versions, URIs, replicas per track, weight).
- ``build_deployment``, ``build_service``, ``build_httproute``, ``owner_reference``,
  ``common_labels``, ``selector_labels`` for callers that need one piece.

What the children look like: owner reference to the RankingModel (``controller`` and
``blockOwnerDeletion`` true); labels ``app.kubernetes.io/name=<m>``,
``app.kubernetes.io/managed-by=rankops``, ``rankops.dev/track`` and ``rankops.dev/version``
(the shared Service ``<m>`` and the HTTPRoute carry no track); Deployment selectors are
``name`` + ``track`` only (selectors are immutable, versions change). Pods: env
``RANKOPS_MODEL``, ``RANKOPS_VERSION``, ``RANKOPS_TRACK``, ``RANKOPS_MODEL_URI``,
``RANKOPS_PORT`` then the user's env; Pod Security "restricted" (non-root uid 10001,
read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp
``RuntimeDefault``, no service-account token); an ``emptyDir`` on ``/tmp``; readiness
``/readyz``, liveness ``/healthz``, a startup probe for slow model loads; Prometheus scrape
annotations on port ``http`` path ``/metrics``.

Replicas: outside a rollout the stable track runs ``serving.replicas`` and the canary 0 (or
``serving.replicas`` while ``canaryDraining`` after a promotion, with the route's canary share
``status.canaryWeight`` behind an HTTPRoute, 0 otherwise); during a rollout the split
comes from ``routing.desired_replicas``. Outside a rollout the canary Deployment carries the
stable version (so a promotion changes no pod template there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

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
from .spec import RankingModelSpec, parse_ranking_model_spec

__all__ = [
    "TrackPlan",
    "build_children",
    "build_deployment",
    "build_httproute",
    "build_service",
    "common_labels",
    "needs_update",
    "owner_reference",
    "parse_quantity",
    "quantities_equal",
    "selector_labels",
    "track_replicas",
]

CONTAINER_NAME = "ranking"
RUN_AS_USER = 10001


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


def _spec(spec: RankingModelSpec | Mapping[str, Any]) -> RankingModelSpec:
    return spec if isinstance(spec, RankingModelSpec) else parse_ranking_model_spec(spec)


def track_replicas(spec: RankingModelSpec | Mapping[str, Any], status: Mapping[str, Any] | None) -> TrackPlan:
    """Versions, URIs and replica counts of both tracks for ``status`` (see module docstring)."""
    spec = _spec(spec)
    status = status or {}
    replicas = spec.serving.replicas
    stable_version = status.get("stableVersion") or spec.model.version
    stable_uri = status.get("stableUri") or spec.model.uri
    canary_version = status.get("canaryVersion")
    if canary_version:
        weight = int(status.get("canaryWeight") or 0)
        split = desired_replicas(spec.rollout.traffic_routing, weight, replicas)
        return TrackPlan(
            stable_version=stable_version,
            stable_uri=stable_uri,
            stable_replicas=split.stable,
            canary_version=canary_version,
            canary_uri=status.get("canaryUri") or spec.model.uri,
            canary_replicas=split.canary,
            canary_weight=weight,
        )
    draining = bool(status.get("canaryDraining"))
    return TrackPlan(
        stable_version=stable_version,
        stable_uri=stable_uri,
        stable_replicas=replicas,
        canary_version=stable_version,
        canary_uri=stable_uri,
        canary_replicas=replicas if draining else 0,
        # Behind an HTTPRoute a draining canary keeps the route's share until the stable track is ready.
        canary_weight=int(status.get("canaryWeight") or 0) if draining else 0,
    )


def build_deployment(
    meta: Mapping[str, Any],
    spec: RankingModelSpec | Mapping[str, Any],
    track: str,
    version: str,
    uri: str,
    replicas: int,
) -> dict[str, Any]:
    """The Deployment ``<m>-<track>`` serving ``version`` from ``uri``."""
    spec = _spec(spec)
    name = meta["name"]
    port = spec.serving.port
    env: list[dict[str, Any]] = [
        {"name": "RANKOPS_MODEL", "value": name},
        {"name": "RANKOPS_VERSION", "value": version},
        {"name": "RANKOPS_TRACK", "value": track},
        {"name": "RANKOPS_MODEL_URI", "value": uri},
        {"name": "RANKOPS_PORT", "value": str(port)},
    ]
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
    spec: RankingModelSpec | Mapping[str, Any],
    track: str | None,
    version: str | None = None,
) -> dict[str, Any]:
    """Service ``<m>`` (both tracks, ``track=None``) or ``<m>-<track>``."""
    spec = _spec(spec)
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


def build_httproute(
    meta: Mapping[str, Any], spec: RankingModelSpec | Mapping[str, Any], canary_weight: int
) -> dict[str, Any]:
    """The Gateway API route splitting traffic between ``<m>-stable`` and ``<m>-canary``.

    Without ``gateway`` in the spec, ``parentRefs`` is not set (and so not compared by
    ``needs_update``): whoever created the route attaches it.
    """
    spec = _spec(spec)
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
    meta: Mapping[str, Any], spec: RankingModelSpec | Mapping[str, Any], status: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """All desired children for ``status`` (module docstring), in the order to apply them."""
    spec = _spec(spec)
    plan = track_replicas(spec, status)
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


# --------------------------------------------------------------------------- the no-write diff

# <signedNumber><suffix> (k8s.io/apimachinery resource.Quantity): binary SI, a decimal exponent, or
# decimal SI ("E" alone is exa; "E3" and "e3" are exponents).
_QUANTITY_RE = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$"
)
_BINARY_SI = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_NANO = 10**9
# Keys holding quantities: maps of them (container/PVC resources, pod overhead) or one (emptyDir).
_QUANTITY_FIELDS = frozenset({"limits", "requests", "overhead", "sizeLimit"})


def parse_quantity(value: str | int | float) -> Fraction:
    """The value of a Kubernetes quantity (``500m``, ``0.5``, ``1Gi``, ``1e3``, ``2``), in base units.

    Rounded up to nano units, as the API server canonicalises. Raises ``ValueError`` for anything
    that is not a quantity.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a quantity: {value!r}")
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, float):
        try:
            number = Fraction(Decimal(text))
        except InvalidOperation:
            raise ValueError(f"not a quantity: {value!r}") from None
        suffix = ""
    else:
        match = _QUANTITY_RE.match(text)
        if match is None:
            raise ValueError(f"not a quantity: {value!r}")
        number = Fraction(Decimal(match["number"]))
        suffix = match["suffix"] or ""
    if suffix in _BINARY_SI:
        number *= 1024 ** _BINARY_SI[suffix]
    elif suffix in _DECIMAL_SI:
        number *= Fraction(10) ** _DECIMAL_SI[suffix]
    else:  # a decimal exponent
        number *= Fraction(10) ** int(suffix[1:])
    return Fraction(math.ceil(number * _NANO), _NANO)


def quantities_equal(a: Any, b: Any) -> bool:
    """Whether two quantities have the same value; literal equality when either is not a quantity."""
    try:
        return parse_quantity(a) == parse_quantity(b)
    except ValueError:
        return bool(a == b)


def _empty(value: Any) -> bool:
    """Values the API server drops under ``omitempty`` (so an absent key matches them).

    A mapping of nothing but empty values counts as empty too (``resources: {limits: {}}``).
    """
    if isinstance(value, Mapping):
        return all(_empty(v) for v in value.values())
    return value is None or value == "" or (isinstance(value, list | tuple) and len(value) == 0)


def needs_update(desired: Any, actual: Any) -> bool:
    """True when some field set in ``desired`` is missing from or different in ``actual``.

    Mappings compare the keys of ``desired`` only, an empty value in ``desired`` matching an
    absent key; lists must have the same length and compare element by element (so extra
    defaults inside list items are ignored too, while an item removed from ``desired`` is a
    change); resource quantities compare by value; other scalars by equality, except that
    ``1`` and ``1.0`` are equal (but ``True`` and ``1`` are not).
    """
    return _differs(desired, actual, quantity=False)


def _differs(desired: Any, actual: Any, *, quantity: bool) -> bool:
    """``quantity``: scalars here (or the values of this mapping) are resource quantities."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return not (_empty(desired) and actual is None)
        for key, value in desired.items():
            current = actual.get(key)
            if current is None:
                if _empty(value):
                    continue
                return True
            if _differs(value, current, quantity=quantity or key in _QUANTITY_FIELDS):
                return True
        return False
    if isinstance(desired, list | tuple):
        if not isinstance(actual, list | tuple) or len(actual) != len(desired):
            return True
        return any(_differs(d, a, quantity=False) for d, a in zip(desired, actual, strict=True))
    if isinstance(desired, bool) or isinstance(actual, bool):
        return not (isinstance(desired, bool) and isinstance(actual, bool) and desired == actual)
    if quantity:
        return not quantities_equal(desired, actual)
    return bool(desired != actual)
