"""Validating admission webhooks, called the way a real API server calls them.

For every write (create, update, patch, delete) the emulator asks :class:`ValidatingAdmission`
which ``ValidatingWebhookConfiguration`` webhooks match, and calls each with an
``admission.k8s.io/v1`` ``AdmissionReview`` over HTTPS before the object is stored:

- matching: ``rules`` (operations, apiGroups, apiVersions, resources with ``*``, ``*/*``,
  ``res/*``, ``*/sub``, and ``scope``), ``namespaceSelector`` (the labels of the object's
  Namespace; of the object itself for a Namespace; ignored for other cluster-scoped objects)
  and ``objectSelector`` (the new or the old object's labels). Writes to webhook
  configurations themselves are never sent to webhooks (as on a real server);
- the request: ``uid``, ``kind``, ``resource``, ``subResource``, ``requestKind``,
  ``requestResource``, ``name``, ``namespace``, ``operation``, ``userInfo``, ``object`` (after
  defaulting, pruning and schema validation: what would be stored), ``oldObject``, ``dryRun``
  and ``options``; POSTed to ``clientConfig.url`` or ``https://<service>.<ns>.svc:<port><path>``
  with ``?timeout=<n>s``, verified against ``clientConfig.caBundle`` (the system's roots when
  absent) and the host name;
- the answer: a denial becomes the client's error, code from ``response.status.code`` (at least
  400) and the message ``admission webhook "<name>" denied the request: <message>``;
  ``response.warnings`` become ``Warning`` headers; a call that fails (refused, TLS, a non-200
  answer, an invalid AdmissionReview, a wrong ``uid``, past ``timeoutSeconds``, default 10)
  is a 500 ``Internal error occurred: failed calling webhook ...`` under ``failurePolicy:
  Fail`` (the default) and is ignored under ``Ignore``; a dry-run request to a webhook whose
  ``sideEffects`` is not ``None``/``NoneOnDryRun`` is refused (400).

A service reference needs ``resolve_service(namespace, name, port) -> (host, port)``: the
sandbox runs no cluster network, so the caller says where a Service's endpoint listens; TLS is
still verified against the service's DNS name (``<name>.<namespace>.svc``), as the API server
does. Without a resolver (or when it returns None) the call fails with ``no endpoints
available for service``.

DIFFERENCES from a real API server: mutating webhooks are not called (their configurations are
stored as sent); ``matchConditions`` and ``matchPolicy: Equivalent`` are not evaluated (one
version per resource is served); the webhooks are called one after the other, not in parallel;
``userInfo`` is always the sandbox's one user (the emulator authenticates no one).
"""

from __future__ import annotations

import base64
import copy
import ssl
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from rankops.sandbox.errors import ApiError
from rankops.sandbox.registry import ResourceType
from rankops.sandbox.store import Store

__all__ = ["ADMISSION_KEY", "ServiceResolver", "ValidatingAdmission", "Webhook"]

ADMISSION_GROUP = "admissionregistration.k8s.io"
ADMISSION_KEY = (ADMISSION_GROUP, "v1", "validatingwebhookconfigurations")
EXEMPT = frozenset({"validatingwebhookconfigurations", "mutatingwebhookconfigurations"})
USER_INFO = {"username": "sandbox", "uid": "sandbox", "groups": ["system:masters", "system:authenticated"]}
OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}

ServiceResolver = Callable[[str, str, int], "tuple[str, int] | None"]


@dataclass(frozen=True)
class Webhook:
    """One entry of a ValidatingWebhookConfiguration's ``webhooks``."""

    configuration: str
    spec: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    @property
    def timeout(self) -> float:
        return float(self.spec.get("timeoutSeconds") or 10)

    @property
    def fails_open(self) -> bool:
        return self.spec.get("failurePolicy", "Fail") == "Ignore"

    def matches_rules(self, rt: ResourceType, subresource: str | None, operation: str) -> bool:
        return any(_rule_matches(rule, rt, subresource, operation) for rule in self.spec.get("rules") or [])


class ValidatingAdmission:
    """The validating admission chain of an emulated API server (see the module docstring)."""

    def __init__(self, store: Store, resolve_service: ServiceResolver | None = None) -> None:
        self.store = store
        self.resolve_service = resolve_service
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def webhooks(self, rt: ResourceType, subresource: str | None, operation: str) -> list[Webhook]:
        """The webhooks whose rules match (selectors are checked once the object is known)."""
        if rt.plural in EXEMPT and rt.group == ADMISSION_GROUP:
            return []
        group, _, plural = ADMISSION_KEY
        configs = sorted(self.store.items(group, plural, None), key=lambda c: c["metadata"]["name"])
        hooks = [Webhook(c["metadata"]["name"], h) for c in configs for h in c.get("webhooks") or []]
        return [h for h in hooks if h.matches_rules(rt, subresource, operation)]

    async def review(
        self,
        hooks: Sequence[Webhook],
        *,
        rt: ResourceType,
        operation: str,
        namespace: str | None,
        name: str,
        obj: Mapping[str, Any] | None,
        old: Mapping[str, Any] | None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Call every webhook that matches; the warnings they returned, or ApiError when refused."""
        namespace_labels = self._namespace_labels(rt, namespace, obj or old)
        warnings: list[str] = []
        for hook in hooks:
            if not _selected(hook.spec.get("objectSelector"), obj, old):
                continue
            if namespace_labels is not None and not _selector_matches(
                hook.spec.get("namespaceSelector"), namespace_labels
            ):
                continue
            if dry_run and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
                raise ApiError(400, "BadRequest", f'admission webhook "{hook.name}" does not support dry run')
            request = _admission_request(rt, operation, namespace, name, obj, old, subresource, dry_run)
            warnings += await self._call(hook, request)
        return warnings

    def _namespace_labels(
        self, rt: ResourceType, namespace: str | None, obj: Mapping[str, Any] | None
    ) -> dict[str, str] | None:
        if rt.group == "" and rt.plural == "namespaces":
            return dict(((obj or {}).get("metadata") or {}).get("labels") or {})
        if not rt.namespaced or namespace is None:
            return None  # namespaceSelector does not apply to cluster-scoped objects
        ns = self.store.get(("", "namespaces", "", namespace)) or {}
        return dict((ns.get("metadata") or {}).get("labels") or {})

    async def _call(self, hook: Webhook, review: dict[str, Any]) -> list[str]:
        """POST the review; the webhook's warnings, or ApiError for a denial or a failed call."""
        uid = review["request"]["uid"]
        try:
            answer = await self._post(hook, review)
            response = answer.get("response") if isinstance(answer, dict) else None
            if (
                not isinstance(response, dict)
                or answer.get("apiVersion") != "admission.k8s.io/v1"
                or answer.get("kind") != "AdmissionReview"
            ):
                raise _CallFailed(
                    "received invalid webhook response: expected an admission.k8s.io/v1 AdmissionReview"
                )
            if response.get("uid") != uid:
                got = response.get("uid")
                raise _CallFailed(
                    f'received invalid webhook response: expected response.uid="{uid}", got "{got}"'
                )
        except _CallFailed as exc:
            if hook.fails_open:
                return []
            raise ApiError(
                500, "InternalError", f'Internal error occurred: failed calling webhook "{hook.name}": {exc}'
            ) from None
        warnings = [str(w) for w in response.get("warnings") or []]
        if response.get("allowed") is True:
            return warnings
        status = response.get("status") or {}
        code = int(status.get("code") or 0)
        denied = f'admission webhook "{hook.name}" denied the request'
        text = status.get("message") or status.get("reason")
        raise ApiError(
            max(code, 400),
            str(status.get("reason") or ""),
            f"{denied}: {text}" if text else f"{denied} without explanation",
        )

    async def _post(self, hook: Webhook, review: dict[str, Any]) -> Any:
        config = hook.spec.get("clientConfig") or {}
        query = f"?timeout={hook.timeout:g}s"
        server_hostname: str | None = None
        if config.get("url"):
            url = shown = str(config["url"]) + query
        else:
            service = config.get("service") or {}
            ns, name = service.get("namespace", ""), service.get("name", "")
            port = int(service.get("port") or 443)
            path = service.get("path") or ""
            shown = f"https://{name}.{ns}.svc:{port}{path}{query}"
            target = self.resolve_service(ns, name, port) if self.resolve_service else None
            if target is None:
                raise _CallFailed(
                    f'failed to call webhook: Post "{shown}": no endpoints available for service "{name}"'
                )
            server_hostname = f"{name}.{ns}.svc"
            url = f"https://{target[0]}:{target[1]}{path}{query}"
        try:
            context = _tls_context(config.get("caBundle"))
        except (ValueError, ssl.SSLError) as exc:
            raise _CallFailed(f"failed to call webhook: invalid caBundle: {exc}") from None
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url,
                json=review,
                ssl=context,
                server_hostname=server_hostname,
                timeout=aiohttp.ClientTimeout(total=hook.timeout),
            ) as answer:
                if answer.status != 200:
                    raise _CallFailed(
                        f'failed to call webhook: Post "{shown}": the server responded with {answer.status} '
                        f"{answer.reason}"
                    )
                return await answer.json(content_type=None)
        except TimeoutError:
            raise _CallFailed(f'failed to call webhook: Post "{shown}": context deadline exceeded') from None
        except (aiohttp.ClientError, ssl.SSLError, OSError, ValueError) as exc:
            raise _CallFailed(f'failed to call webhook: Post "{shown}": {exc}') from None


class _CallFailed(Exception):
    """The webhook could not be asked (failurePolicy decides), as opposed to a denial."""


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    if not ca_bundle:
        return ssl.create_default_context()
    pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
    return ssl.create_default_context(cadata=pem)


def _rule_matches(rule: Mapping[str, Any], rt: ResourceType, subresource: str | None, operation: str) -> bool:
    def has(field: str, value: str) -> bool:
        values = rule.get(field) or []
        return "*" in values or value in values

    if not (has("operations", operation) and has("apiGroups", rt.group) and has("apiVersions", rt.version)):
        return False
    scope = rule.get("scope") or "*"
    if (scope == "Cluster" and rt.namespaced) or (scope == "Namespaced" and not rt.namespaced):
        return False
    for pattern in rule.get("resources") or []:
        res, _, sub = str(pattern).partition("/")
        if subresource is None:
            if not sub and res in ("*", rt.plural):
                return True
        elif sub and res in ("*", rt.plural) and sub in ("*", subresource):
            return True
    return False


def _selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector; empty or absent selects everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def _selected(selector: Mapping[str, Any] | None, *objects: Mapping[str, Any] | None) -> bool:
    found = [o for o in objects if o is not None]
    return any(_selector_matches(selector, (o.get("metadata") or {}).get("labels") or {}) for o in found)


def _admission_request(
    rt: ResourceType,
    operation: str,
    namespace: str | None,
    name: str,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    subresource: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    resource = {"group": rt.group, "version": rt.version, "resource": rt.plural}
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": name,
        "operation": operation,
        "userInfo": copy.deepcopy(USER_INFO),
        "object": copy.deepcopy(obj) if obj is not None else None,
        "oldObject": copy.deepcopy(old) if old is not None else None,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": OPTIONS_KIND.get(operation, "UpdateOptions")},
    }
    if subresource:
        request["subResource"] = subresource
    if rt.namespaced and namespace is not None:
        request["namespace"] = namespace
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
