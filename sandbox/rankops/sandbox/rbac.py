"""Kubernetes authorization attributes of HTTP requests, and RBAC rule evaluation.

The emulator authorizes nothing (a listed DIFFERENCE); this module lets a test ask what a
real API server would have asked its RBAC authorizer about each request the emulator
received, and whether a set of ``PolicyRule``s (a chart's ClusterRole) allows it:

- :func:`request_attributes` follows the API server's ``RequestInfoFactory``: the verb from
  the method (``GET`` is ``get`` on a name, ``list`` on a collection, ``watch`` with
  ``?watch=true``; ``POST`` create, ``PUT`` update, ``PATCH`` patch, ``DELETE`` delete or
  ``deletecollection``), API group, resource, subresource, namespace and name from the path;
  non-resource paths (``/apis``, ``/version``) carry the lowercase method as the verb.
- :func:`allows` is RBAC's rule matching: a rule matches when its verbs, API groups and
  resources (``resource/subresource`` for a subresource) contain the request's, ``*``
  matching anything, and ``resourceNames`` (when set) contain the object's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["RequestAttributes", "allows", "request_attributes", "rule_grants"]


@dataclasses.dataclass(frozen=True)
class RequestAttributes:
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource_request(self) -> bool:
        return bool(self.resource)

    @property
    def resource_with_sub(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestAttributes:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in fields})


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_attributes(method: str, url: str) -> RequestAttributes:
    """The authorization attributes of ``METHOD url`` (path with an optional query)."""
    parts = urlsplit(url)
    path, query = parts.path, parse_qs(parts.query)
    method = method.upper()
    segments = [s for s in path.split("/") if s]
    if not segments or segments[0] not in ("api", "apis"):
        return RequestAttributes(verb=method.lower(), path=path)
    if segments[0] == "api":
        group, rest = "", segments[1:]
    else:
        if len(segments) < 2:
            return RequestAttributes(verb=method.lower(), path=path)
        group, rest = segments[1], segments[2:]
    if len(rest) < 2:  # /api/v1, /apis/group/version: discovery
        return RequestAttributes(verb=method.lower(), path=path)
    rest = rest[1:]  # drop the version
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:  # /api/v1/namespaces/NAME: the Namespace itself
        namespace = rest[1]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = "/".join(rest[2:])
    watching = query.get("watch", [""])[0] in ("true", "1")
    if method in ("GET", "HEAD"):
        verb = "watch" if watching else ("get" if name else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, method.lower())
    return RequestAttributes(verb, group, resource, subresource, namespace, name, path)


def _contains(values: Iterable[str], wanted: str) -> bool:
    values = list(values)
    return "*" in values or wanted in values


def rule_grants(rule: Mapping[str, Any], attrs: RequestAttributes) -> bool:
    """Whether one RBAC ``PolicyRule`` allows the request."""
    if not attrs.is_resource_request:
        return any(
            url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        ) and _contains(rule.get("verbs") or [], attrs.verb)
    if not _contains(rule.get("verbs") or [], attrs.verb):
        return False
    if not _contains(rule.get("apiGroups") or [], attrs.api_group):
        return False
    resources = rule.get("resources") or []
    if not (
        "*" in resources
        or attrs.resource_with_sub in resources
        or (attrs.subresource and f"*/{attrs.subresource}" in resources)
        or (not attrs.subresource and attrs.resource in resources)
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def allows(rules: Iterable[Mapping[str, Any]], attrs: RequestAttributes) -> bool:
    """Whether any of ``rules`` allows the request (RBAC is a union of grants)."""
    return any(rule_grants(rule, attrs) for rule in rules)
