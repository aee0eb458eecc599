"""The Kubernetes side of the shell: credentials, a minimal async API client over aiohttp, the
idempotent children applier, Deployment readiness and Events.

Why not kopf's internal client or the official ``kubernetes`` package: kopf's API client is
private (``kopf._cogs``), and the sync official client would need a thread and its own
credential chain. This client takes the very ``kopf.ConnectionInfo`` that the operator's
``@kopf.on.login`` handler returns (emulator URL, service account or kubeconfig), so the
operator and its writes always talk to the same API server with the same credentials:
``as_http_headers()`` and ``as_ssl_context()`` are kopf's public helpers for exactly that.

Only JSON and merge patches are used (``application/merge-patch+json``), which every API
server and the sandbox emulator understand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, cast
from urllib.parse import quote, urlencode

import aiohttp
import kopf

from rankops.operator import api
from rankops.operator.core.diff import needs_update as core_needs_update
from rankops.operator.core.events import Event

logger = logging.getLogger(__name__)

JSON = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


def resource_path(
    kind: str,
    namespace: str | None,
    name: str | None = None,
    sub: str | None = None,
    api_version: str | None = None,
) -> str:
    group, version, plural = api.resource(kind)
    if api_version:  # honour the object's own apiVersion (e.g. gateway v1beta1)
        group, _, version = api_version.rpartition("/")
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    path = base
    if namespace:
        path += f"/namespaces/{quote(namespace)}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name)}"
    if sub:
        path += f"/{sub}"
    return path


class KubeClient:
    """Async JSON client for the few calls the shell makes. Counts its own writes (for tests)."""

    def __init__(
        self,
        credentials: Callable[[], kopf.ConnectionInfo | Awaitable[kopf.ConnectionInfo | None] | None],
        *,
        timeout: float = 10.0,
    ) -> None:
        self._credentials = credentials
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._info: kopf.ConnectionInfo | None = None
        self._lock = asyncio.Lock()
        self.writes = 0

    async def _connect(self, *, refresh: bool = False) -> tuple[aiohttp.ClientSession, kopf.ConnectionInfo]:
        async with self._lock:
            if self._session is not None and self._info is not None and not refresh:
                return self._session, self._info
            info = self._credentials()
            if asyncio.iscoroutine(info) or isinstance(info, Awaitable):
                info = await info
            if info is None:
                raise ApiError(0, "no Kubernetes credentials available (the operator has not logged in)")
            if self._session is not None:
                await self._session.close()
            connector = None
            if info.server.startswith("https:"):
                connector = aiohttp.TCPConnector(ssl=info.as_ssl_context())
            self._session = aiohttp.ClientSession(
                base_url=None,
                connector=connector,
                headers={"Accept": "application/json", **info.as_http_headers()},
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
            self._info = info
            return self._session, info

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> Any:
        for attempt in range(2):
            session, info = await self._connect(refresh=attempt > 0)
            data = None if body is None else json.dumps(body)
            headers = {"Content-Type": content_type} if body is not None else {}
            url = info.server.rstrip("/") + path
            async with session.request(method, url, data=data, headers=headers) as response:
                text = await response.text()
                if response.status == 401 and attempt == 0:
                    continue  # credentials may have rotated: re-login once
                try:
                    payload = json.loads(text) if text else None
                except ValueError:
                    payload = text
                if response.status >= 400:
                    message = payload.get("message") if isinstance(payload, dict) else None
                    raise ApiError(response.status, f"{method} {path}: {message or text[:200]}", payload)
                if method != "GET":
                    self.writes += 1
                return payload
        raise AssertionError("unreachable")

    async def get(self, path: str) -> JSON | None:
        try:
            result: JSON = await self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def list_items(self, path: str, label_selector: Mapping[str, str] | None = None) -> list[JSON]:
        """The items of a collection (one page: a model's children are few)."""
        if label_selector:
            path += "?" + urlencode(
                {"labelSelector": ",".join(f"{k}={v}" for k, v in label_selector.items())}
            )
        result = await self.request("GET", path)
        items = result.get("items") if isinstance(result, dict) else None
        return [item for item in items or [] if isinstance(item, dict)]

    async def create(self, path: str, body: JSON) -> JSON:
        result: JSON = await self.request("POST", path, body)
        return result

    async def merge_patch(self, path: str, patch: JSON) -> JSON:
        result: JSON = await self.request("PATCH", path, patch, content_type="application/merge-patch+json")
        return result

    async def delete(self, path: str, *, uid: str | None = None) -> None:
        """Delete (absent is fine); with ``uid``, only that incarnation (a precondition)."""
        body = (
            None
            if uid is None
            else {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        )
        try:
            await self.request("DELETE", path, body)
        except ApiError as exc:
            if exc.status != 404:
                raise


class NeedsUpdate(Protocol):
    def __call__(self, desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool: ...


@dataclasses.dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    action: str  # created | updated | unchanged | deleted
    object: JSON


class ForeignObject(Exception):
    """A child's name is taken by an object another controller owns: never adopted, never changed."""

    def __init__(self, kind: str, namespace: str | None, name: str, owner: Mapping[str, Any]) -> None:
        super().__init__(
            f"{kind} {namespace}/{name} exists and is controlled by {owner.get('kind')} "
            f"{owner.get('name')} (uid {owner.get('uid')}); not taking it over"
        )
        self.kind, self.namespace, self.name = kind, namespace, name


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether one of ``obj``'s ownerReferences names the owner with this uid."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(isinstance(ref, Mapping) and ref.get("uid") == uid for ref in refs)


class ChildrenApplier:
    """Create absent children; patch only those that ``needs_update`` says differ; else no write.

    ``prune`` deletes the children an owner no longer wants (an HTTPRoute after a switch to
    replica-ratio routing, or a renamed one): only objects carrying the owner's labels *and*
    an ownerReference with the owner's uid, so objects we do not own are never touched.
    An existing object controlled by another owner is never adopted (``ForeignObject``).
    """

    def __init__(self, client: KubeClient, needs_update: NeedsUpdate = core_needs_update) -> None:
        self.client = client
        self.needs_update = needs_update

    async def apply(self, desired: JSON) -> Applied:
        kind = desired["kind"]
        meta = desired["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        path = resource_path(kind, namespace, name, api_version=desired.get("apiVersion"))
        actual = await self.client.get(path)
        if actual is None:
            collection = resource_path(kind, namespace, api_version=desired.get("apiVersion"))
            try:
                created = await self.client.create(collection, desired)
            except ApiError as exc:
                if exc.status == 404:  # the namespace is gone, or the kind is not served
                    raise ApiError(
                        404,
                        f"cannot create {kind} {namespace}/{name}: {exc} "
                        f"(is {desired.get('apiVersion')} {kind} served by this cluster?)",
                        exc.body,
                    ) from exc
                if exc.status != 409:
                    raise
                actual = await self.client.get(path)  # lost a race with ourselves: compare again
                if actual is None:
                    raise
            else:
                return Applied(kind, name, "created", created)
        self._check_controller(desired, actual)
        if not self.needs_update(desired, actual):
            return Applied(kind, name, "unchanged", actual)
        patch = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "status")}
        patch["metadata"] = {
            k: v for k, v in meta.items() if k in ("labels", "annotations", "ownerReferences")
        }
        updated = await self.client.merge_patch(path, patch)
        return Applied(kind, name, "updated", updated)

    @staticmethod
    def _check_controller(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> None:
        """Refuse an object another controller owns (an object with no controller is adopted)."""
        ours = controller_of(desired)
        theirs = controller_of(actual)
        if ours is None or theirs is None or theirs.get("uid") == ours.get("uid"):
            return
        meta = desired["metadata"]
        raise ForeignObject(desired["kind"], meta.get("namespace"), meta["name"], theirs)

    async def prune(
        self,
        namespace: str,
        owner_uid: str,
        labels: Mapping[str, str],
        keep: Sequence[Mapping[str, Any]],
        kinds: Sequence[str],
    ) -> list[Applied]:
        """Delete the objects of ``kinds`` labelled ``labels``, owned by ``owner_uid``, not in ``keep``.

        A kind the API server does not serve (no Gateway API installed: 404) or that we may not
        list (403) has nothing of ours to prune. Deletes carry a uid precondition, so an object
        re-created meanwhile under the same name is left alone.
        """
        if not owner_uid:
            raise ValueError("prune needs the owner's uid")
        wanted = {(obj["kind"], obj["metadata"]["name"]) for obj in keep}
        deleted: list[Applied] = []
        for kind in kinds:
            try:
                items = await self.client.list_items(resource_path(kind, namespace), labels)
            except ApiError as exc:
                if exc.status not in (403, 404):
                    raise
                level = logging.DEBUG if exc.status == 404 else logging.WARNING
                logger.log(level, "not pruning %s in %s: %s", kind, namespace, exc)
                continue
            for obj in items:
                meta = obj.get("metadata") or {}
                name = meta.get("name", "")
                if (kind, name) in wanted or not owned_by(obj, owner_uid) or meta.get("deletionTimestamp"):
                    continue
                if any((meta.get("labels") or {}).get(k) != v for k, v in labels.items()):
                    continue  # a server that ignored the selector: check ourselves
                try:
                    await self.client.delete(resource_path(kind, namespace, name), uid=meta.get("uid"))
                except ApiError as exc:
                    if exc.status != 409:  # 409: precondition failed, it is another object now
                        raise
                    continue
                deleted.append(Applied(kind, name, "deleted", obj))
        return deleted


def connection_info(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """``RANKOPS_APISERVER_URL`` when set (emulator, ``kubectl proxy``), else in-cluster or kubeconfig."""
    url = os.environ.get("RANKOPS_APISERVER_URL")
    if url:
        return kopf.ConnectionInfo(
            server=url, insecure=True, default_namespace=os.environ.get("RANKOPS_NAMESPACE") or "default"
        )
    try:
        info = kopf.login_via_client(**kwargs)  # official client: in-cluster, kubeconfig, exec plugins
    except Exception:  # the client library is optional: fall back to kopf's minimal logins
        info = None
    return info or kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def deployment_ready(deployment: Mapping[str, Any] | None) -> bool:
    """All desired replicas of the current generation updated and ready (Deployment conventions)."""
    if deployment is None:
        return False
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return False
    if desired == 0:
        return True
    # Old pods still running (replicas > updatedReplicas) still take traffic through the
    # Service: not ready yet, as `kubectl rollout status` judges it.
    return (
        int(status.get("replicas", 0)) <= int(status.get("updatedReplicas", 0))
        and int(status.get("updatedReplicas", 0)) >= desired
        and int(status.get("readyReplicas", 0)) >= desired
        and int(status.get("availableReplicas", 0)) >= desired
    )


def post_event(obj: Mapping[str, Any], event: Event) -> None:
    """Post a core ``Event`` about ``obj`` through kopf (which adds the object reference)."""
    kopf.event(cast(Any, dict(obj)), type=event.type, reason=event.reason, message=event.message[:1024])
