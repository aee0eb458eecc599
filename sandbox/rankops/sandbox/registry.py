"""What the emulated API server serves: resource types, built-in and from CRDs."""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["BUILTINS", "ResourceType", "load_manifests", "resource_types_from_crd"]

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass
class ResourceType:
    """One served resource (a group/version/plural), with what discovery and validation need."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    shortnames: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale"
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    crd: Mapping[str, Any] | None = None  # set for custom resources: validated against its schema
    # Where `.spec.replicas` etc. live for the scale subresource (CRDs can declare others).
    scale_paths: Mapping[str, str] = field(
        default_factory=lambda: {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
        }
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def discovery(self) -> list[dict[str, Any]]:
        """Entries of an APIResourceList for this resource and its subresources."""
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(VERBS),
        }
        if self.shortnames:
            main["shortNames"] = list(self.shortnames)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        for sub in self.subresources:
            entries.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": "Scale" if sub == "scale" else self.kind,
                    "verbs": ["get", "patch", "update"],
                    **({"group": "autoscaling", "version": "v1"} if sub == "scale" else {}),
                }
            )
        return entries


def _b(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    shortnames: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group, version, plural, kind, namespaced, kind.lower(), shortnames, categories, subresources
    )


BUILTINS: tuple[ResourceType, ...] = (
    _b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        shortnames=("crd", "crds"),
        subresources=("status",),
    ),
    _b("", "v1", "namespaces", "Namespace", namespaced=False, shortnames=("ns",), subresources=("status",)),
    _b("", "v1", "events", "Event", shortnames=("ev",)),
    _b("events.k8s.io", "v1", "events", "Event", shortnames=("ev",)),
    _b("", "v1", "services", "Service", shortnames=("svc",), subresources=("status",), categories=("all",)),
    _b("", "v1", "configmaps", "ConfigMap", shortnames=("cm",)),
    _b("", "v1", "secrets", "Secret"),
    _b("", "v1", "pods", "Pod", shortnames=("po",), subresources=("status",), categories=("all",)),
    _b("", "v1", "serviceaccounts", "ServiceAccount", shortnames=("sa",)),
    _b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        shortnames=("pvc",),
        subresources=("status",),
    ),
    _b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        shortnames=("deploy",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    _b(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        shortnames=("rs",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    _b("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    # Called for matching writes (rankops.sandbox.admission); mutating ones are only stored.
    _b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
    ),
    _b(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
    ),
    _b("batch", "v1", "jobs", "Job", subresources=("status",), categories=("all",)),
    _b(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        shortnames=("cj",),
        subresources=("status",),
        categories=("all",),
    ),
    _b("coordination.k8s.io", "v1", "leases", "Lease"),
    _b(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "HTTPRoute",
        subresources=("status",),
        categories=("gateway-api",),
    ),
    _b(
        "gateway.networking.k8s.io",
        "v1",
        "gateways",
        "Gateway",
        shortnames=("gtw",),
        subresources=("status",),
        categories=("gateway-api",),
    ),
    _b("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", shortnames=("smon",)),
    _b("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
)

# Printer columns of a few built-ins beyond Name/Age (kubectl would compute these client-side
# from the typed object; the real server computes them in Go). Kept deliberately small.
BUILTIN_COLUMNS: dict[tuple[str, str, str], tuple[Mapping[str, Any], ...]] = {
    ("apps", "v1", "deployments"): (
        {"name": "Ready", "type": "string", "jsonPath": ".status.readyReplicas"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas"},
    ),
    ("apps", "v1", "replicasets"): (
        {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Current", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    ),
    ("", "v1", "pods"): (
        {"name": "Ready", "type": "string", "jsonPath": ".status.containerStatuses[0].ready"},
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Restarts", "type": "integer", "jsonPath": ".status.containerStatuses[0].restartCount"},
        {"name": "IP", "type": "string", "jsonPath": ".status.podIP", "priority": 1},
        {"name": "Node", "type": "string", "jsonPath": ".spec.nodeName", "priority": 1},
    ),
    ("discovery.k8s.io", "v1", "endpointslices"): (
        {"name": "Ports", "type": "string", "jsonPath": ".ports[*].port"},
        {"name": "Endpoints", "type": "string", "jsonPath": ".endpoints[*].addresses[0]"},
    ),
    ("batch", "v1", "jobs"): (
        {"name": "Succeeded", "type": "integer", "jsonPath": ".status.succeeded"},
        {"name": "Failed", "type": "integer", "jsonPath": ".status.failed"},
    ),
    ("", "v1", "events"): (
        {"name": "Type", "type": "string", "jsonPath": ".type"},
        {"name": "Reason", "type": "string", "jsonPath": ".reason"},
        {"name": "Object", "type": "string", "jsonPath": ".involvedObject.name"},
        {"name": "Message", "type": "string", "jsonPath": ".message"},
    ),
    ("", "v1", "namespaces"): ({"name": "Status", "type": "string", "jsonPath": ".status.phase"},),
}
for _rt in BUILTINS:
    _rt.printer_columns = BUILTIN_COLUMNS.get(_rt.key, ())


def resource_types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    result = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        scale = subs.get("scale") or {}
        rt = ResourceType(
            group=spec["group"],
            version=ver["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            shortnames=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(s for s in ("status", "scale") if s in subs),
            printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
            crd=crd,
        )
        if scale:
            rt.scale_paths = {k: scale[k] for k in ("specReplicasPath", "statusReplicasPath") if k in scale}
        result.append(rt)
    return result


def load_manifests(sources: Iterable[str | pathlib.Path | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Dicts from dicts, YAML files (multi-document) and directories of ``*.yaml``/``*.yml``/``*.json``."""
    result: list[dict[str, Any]] = []
    for src in sources:
        if isinstance(src, Mapping):
            result.append(copy.deepcopy(dict(src)))
            continue
        path = pathlib.Path(src)
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if isinstance(doc, Mapping) and doc.get("kind") == "List":
                    result.extend(dict(i) for i in doc.get("items") or [])
                elif isinstance(doc, Mapping):
                    result.append(dict(doc))
    return result
