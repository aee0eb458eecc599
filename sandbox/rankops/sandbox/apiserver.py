"""A Kubernetes API server emulator for tests: kmock's KubernetesEmulator, extended.

kmock provides the HTTP server, request capture (``api.requests``), the reaction DSL
(``api['patch', 'deployments'] << 500`` still overrides any request in tests) and the
Status rendering. This subclass replaces its simplistic object handling with the API
semantics an operator relies on:

- metadata as the server assigns it: uid, creationTimestamp, namespace from the URL, a
  cluster-wide monotonically increasing resourceVersion, generation bumped only on spec
  changes, generateName, deletionTimestamp and finalizers;
- reads: label and field selectors on list and watch, watch from a resourceVersion (with
  410 Expired when it is older than the event log), Table output for ``kubectl get``;
- writes: POST, PUT with optimistic concurrency, merge / JSON / strategic-merge (as merge)
  patches, server-side apply (minimal managedFields), isolated ``/status`` (and ``/scale``)
  subresources, dryRun, owner-reference cascade (Background, Orphan) and namespace deletion;
- CRDs: creating one serves its resource (discovery included); custom resources are
  pruned, defaulted and validated (OpenAPI + CEL) by :mod:`rankops.sandbox.schema`;
- an optional "kubelet" stand-in (``simulate_workloads=True``) that marks Deployments ready
  (and, with ``simulate_jobs=True``, Jobs complete). It RUNS NO PODS: it only writes status.

Usage inside a running loop::

    async with SandboxAPIServer(crds=["crds/"]) as api:
        print(api.url)

Usage from sync code or with kopf's KopfRunner (the server gets its own thread and loop)::

    with SandboxAPIServer.in_thread(crds=[crd_dict]) as api:
        api.write_kubeconfig(tmp_path / "kubeconfig")
        api.get_object("rankingmodels", "m", namespace="default")

kopf connects with ``@kopf.on.login`` returning ``kopf.ConnectionInfo(server=api.url)``.

Deliberate differences from a real server (also marked ``DIFFERENCE`` in the code):

- no authentication or authorization: any client may do anything. Validating admission
  webhooks are called (:mod:`rankops.sandbox.admission`, with its own differences); a Service
  in a webhook's ``clientConfig`` is reached through ``resolve_service``; writes through the
  direct-access methods below (``create``, ``apply_object``...) skip admission, as a write
  straight to etcd would;
- built-in kinds are stored as sent, without their Go validation or defaulting (a
  Deployment without a selector is accepted); only custom resources and CRDs are validated;
- one stored representation per resource: versions of a CRD are served without conversion;
- strategic-merge patches are merge patches; server-side apply has no field-ownership
  conflicts (the later apply wins) and merges lists only by ``name``;
- the garbage collector acts when an owner is deleted; objects created with owner
  references to an owner that never existed are not collected; a namespace is removed at
  once and its objects follow;
- ``/status`` writes change nothing but status (metadata changes in them are dropped);
- pagination serves current objects (no snapshot); ``resourceVersion`` on a list and
  ``resourceVersionMatch`` are ignored; the watch log keeps ``watch_log_size`` events;
- discovery is the legacy (unaggregated) kind; ``/openapi/v2`` is empty and
  ``/openapi/v3`` absent, so ``kubectl explain`` does not work (kubectl validation still
  does: it asks the server, with ``fieldValidation=Strict``);
- Tables of built-ins show Name, Age and a few columns, not kubectl's full set;
- kmock's own ``objects`` registry is not populated: use ``get_object``/``list_objects``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import pathlib
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp.web
import attrs
import yaml
from kmock import KubernetesEmulator, KubernetesError, Server, action, resource
from kmock._internal import rendering  # Request, StreamingError: kmock 0.8 internals (pinned <0.9)

from rankops.sandbox import discovery
from rankops.sandbox.admission import ServiceResolver, ValidatingAdmission
from rankops.sandbox.errors import ApiError, status_body
from rankops.sandbox.paths import parse_api_path
from rankops.sandbox.registry import BUILTINS, ResourceType, load_manifests
from rankops.sandbox.resources import ResourceRequests
from rankops.sandbox.runner import ThreadedServer
from rankops.sandbox.semantics import Cluster
from rankops.sandbox.store import Store

__all__ = ["SandboxAPIServer", "ThreadedServer", "load_manifests"]

T = TypeVar("T")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
JSON_CT = "application/json"


# ---------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class SandboxAPIServer(KubernetesEmulator):
    """The emulated API server. See the module docstring.

    Options: ``crds`` (paths of YAML files or directories, or dicts), ``objects`` (more
    manifests created at start, e.g. namespaces), ``host``/``port`` (0 or None: a free port),
    ``simulate_workloads`` (the kubelet stand-in for Deployments: sets their status soon
    after each change, it runs no pods), ``simulate_jobs`` (marks Jobs Complete likewise),
    ``workload_delay`` and ``gc_delay`` (seconds before the stand-in and the garbage
    collector act), ``strict_namespaces`` (namespaced objects need their Namespace, as on a
    real server; False creates missing namespaces on the fly), ``resolve_service``
    (``(namespace, name, port) -> (host, port)``: where a webhook's Service listens).
    """

    crds: Sequence[str | pathlib.Path | Mapping[str, Any]] = ()
    objects_at_start: Sequence[str | pathlib.Path | Mapping[str, Any]] = attrs.field(
        default=(), alias="objects"
    )
    host: str = "127.0.0.1"
    port: int | None = None
    simulate_workloads: bool = False
    simulate_jobs: bool = False
    workload_delay: float = 0.1
    gc_delay: float = 0.05
    strict_namespaces: bool = True
    watch_log_size: int = 10_000
    resolve_service: ServiceResolver | None = None

    cluster: Cluster = attrs.field(init=False)
    admission: ValidatingAdmission = attrs.field(init=False)
    _resource_requests: ResourceRequests = attrs.field(init=False)
    _server: Server | None = attrs.field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _loop_thread: int | None = attrs.field(default=None, init=False)
    _closing: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.cluster = Cluster(
            strict_namespaces=self.strict_namespaces,
            simulate_workloads=self.simulate_workloads,
            simulate_jobs=self.simulate_jobs,
            workload_delay=self.workload_delay,
            gc_delay=self.gc_delay,
            watch_log_size=self.watch_log_size,
        )
        self.cluster.listeners.append(self._mirror_resource)
        self.admission = ValidatingAdmission(self.cluster.store, self.resolve_service)
        self._resource_requests = ResourceRequests(
            self.cluster, self.admission, self._json, lambda: self._closing
        )
        for rt in BUILTINS:
            self.cluster.register(rt)
        for ns in INITIAL_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for crd in load_manifests(self.crds):
            self.create(crd)
        for obj in load_manifests(self.objects_at_start):
            self.create(obj)

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closing = False
        self._server = Server(self, host=self.host, port=self.port or None)
        await self._server.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        for queue in list(self.store.subscribers):
            queue.put_nowait(None)  # the end-of-stream marker
        await self.cluster.stop_background()
        await self.admission.close()
        if self._server is not None:
            await self._server.__aexit__(exc_type, exc, tb)
            self._server = None
        await super().__aexit__(exc_type, exc, tb)

    def _mirror_resource(self, rt: ResourceType, served: bool) -> None:
        """Keep kmock's ``resources`` registry (``api.resources``) in step with what is served."""
        key = resource(rt.group, rt.version, rt.plural)
        if not served:
            if key in self.resources:
                del self.resources[key]
            return
        info = self.resources[key]
        info.kind, info.singular, info.namespaced = rt.kind, rt.singular, rt.namespaced
        info.verbs = {"create", "delete", "get", "list", "patch", "update", "watch"}
        info.shortnames, info.categories = set(rt.shortnames), set(rt.categories)
        info.subresources = set(rt.subresources)

    @property
    def store(self) -> Store:
        """The object store (read it from the server's loop, or use get_object/list_objects)."""
        return self.cluster.store

    @property
    def types(self) -> dict[tuple[str, str, str], ResourceType]:
        """The served resources by (group, version, plural)."""
        return self.cluster.types

    async def settle(self, seconds: float | None = None) -> None:
        """Wait until background work (GC, kubelet stand-in) is done (or ``seconds`` pass)."""
        await self.cluster.settle(seconds)

    @classmethod
    def in_thread(cls, **kwargs: Any) -> ThreadedServer:
        """A context manager running the server in a thread with its own event loop."""
        return ThreadedServer(cls, kwargs)

    def _address(self) -> str:
        if self._server is None:
            return f"{self.host}:{self.port or 0}"
        return f"{self._server.server.host}:{self._server.port}"

    @property
    def url(self) -> str:  # type: ignore[override]  # kmock's is a yarl.URL
        if self._server is None:
            raise RuntimeError("the server is not running: use `async with` or `in_thread()`")
        return str(self._server.url).rstrip("/")

    def kubeconfig(self, namespace: str = "default", context: str = "rankops-sandbox") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "sandbox"}}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
            ],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | pathlib.Path, namespace: str = "default") -> pathlib.Path:
        """Write a kubeconfig pointing at this server (for kubectl, the kubernetes client, kopf)."""
        target = pathlib.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace)))
        return target

    # -- direct access for tests (thread-safe: marshalled into the server's loop) ---------

    def _call(self, fn: Callable[[], T]) -> T:
        if self._loop is None or self._loop_thread == threading.get_ident() or self._loop.is_closed():
            return fn()

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=30)

    def get_object(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """A deep copy of the stored object, or None."""
        rt = self.cluster.resolve(resource)
        return self._call(lambda: copy.deepcopy(self.store.get(self.cluster.key(rt, namespace, name))))

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        rt = self.cluster.resolve(resource)
        return self._call(
            lambda: [copy.deepcopy(o) for o in self.store.items(rt.group, rt.plural, namespace)]
        )

    def apply_object(self, obj: Mapping[str, Any], status: bool = False) -> dict[str, Any]:
        """Create the object, or replace it (``status=True``: replace only its status)."""

        def run() -> dict[str, Any]:
            rt = self.cluster.type_of(obj)
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace") or ("default" if rt.namespaced else None)
            existing = self.store.get(self.cluster.key(rt, ns, meta.get("name", "")))
            if existing is None:
                return self.create(obj)
            body = copy.deepcopy(dict(obj))
            body.setdefault("metadata", {}).pop("resourceVersion", None)
            return self.cluster.update(rt, ns, meta["name"], body, "status" if status else None, {})

        return self._call(run)

    def delete_object(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        rt = self.cluster.resolve(resource)
        return self._call(lambda: self.cluster.delete(rt, namespace, name, {}))

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object through the same path as a POST (validation included)."""

        def run() -> dict[str, Any]:
            rt = self.cluster.type_of(obj)
            meta = obj.get("metadata") or {}
            ns = (meta.get("namespace") or "default") if rt.namespaced else None
            return self.cluster.create(rt, ns, copy.deepcopy(dict(obj)), {})

        return self._call(run)

    # -- registry -----------------------------------------------------------------------------

    # -- request entry point ----------------------------------------------------------------

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # Replaces kmock's: its path parser fails on `/api/v1/namespaces`; the rest is the same.
        body = await raw.read()
        text = body.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        p = parse_api_path(raw.path)
        act = None
        if p.group is not None and p.plural:
            if raw.method == "GET":
                act = (
                    action.WATCH
                    if raw.query.get("watch") in ("true", "1")
                    else (action.FETCH if p.name else action.LIST)
                )
            else:
                act = {
                    "POST": action.CREATE,
                    "PUT": action.UPDATE,
                    "PATCH": action.UPDATE,
                    "DELETE": action.DELETE,
                }.get(raw.method)
        request = rendering.Request(
            id=len(self._requests),
            raw_request=raw,
            url=raw.url,
            method=raw.method,
            params=dict(raw.query),
            headers=dict(raw.headers),
            cookies=dict(raw.cookies),
            data=data,
            body=body,
            text=text,
            action=act,
            resource=resource(p.group, p.version, p.plural) if p.group is not None and p.version else None,
            namespace=p.namespace,
            name=p.name,
            subresource=p.subresource,
        )
        self._requests.append(request)
        try:
            return await self._handle(request)
        except ApiError as exc:
            return self._json(status_body(exc), exc.status)
        except rendering.StreamingError as exc:  # a user reaction's stream failed midway
            cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else None
            raw_response = exc.args[0]
            if cause is not None and raw_response.prepared:
                await self._stream_error(cause, raw_response)
                await raw_response.write_eof()
                return raw_response
            return await self._render_error(cause or exc)
        except Exception as exc:
            if self._errors:
                self._errors[-1].append(exc)
            return await self._render_error(exc)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        # 1. Reactions the test declared with kmock's DSL win (fallbacks excluded).
        payloads = [p for p in self._payloads if not p.priorities or p.priorities[0] != -math.inf]
        payloads.sort(key=lambda p: tuple(-x for x in p.priorities))
        for payload in payloads:
            if request in payload._source and not payload._disabled.is_set():
                try:
                    return await payload(request)
                except rendering.ReactionMismatchError:
                    payload._disabled.set()
                except NotImplementedError:
                    pass
        # 2. The emulated API.
        response = await self._serve(request)
        if response is not None:
            return response
        # 3. Whatever else kmock (or the test's fallbacks) answers: 404 by default.
        return await super(KubernetesEmulator, self)._handle(request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, KubernetesError):
            return self._json(status_body(exc), exc.status)
        return self._json(
            status_body(ApiError(500, "InternalError", f"Internal error occurred: {exc!r}")), 500
        )

    def _json(self, payload: Any, status: int = 200) -> aiohttp.web.Response:
        response = aiohttp.web.Response(
            body=json.dumps(payload).encode(), status=status, content_type=JSON_CT
        )
        if self.cluster.warnings:  # e.g. unknown fields pruned under fieldValidation=Warn
            response.headers["Warning"] = ", ".join(
                f"299 - {json.dumps(w)}" for w in dict.fromkeys(self.cluster.warnings)
            )
            self.cluster.warnings.clear()
        return response

    async def _serve(self, request: rendering.Request) -> aiohttp.web.StreamResponse | None:
        path = request.url.path
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        p = parse_api_path(path)
        if p.group is None:
            if method != "GET":
                return None
            if path in ("/healthz", "/readyz", "/livez"):
                return aiohttp.web.Response(text="ok")
            if path.rstrip("/") == "/openapi/v2":
                # DIFFERENCE: an empty OpenAPI v2 document (an empty protobuf message). kubectl's
                # client-side validation skips kinds it finds no schema for; the server validates.
                return aiohttp.web.Response(
                    body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
                )
            if path.rstrip("/") == "/apis":
                return self._json(discovery.api_groups(self.types))
            if path.rstrip("/") == "/version":
                return self._json(discovery.version_info())
            if path in ("/", ""):
                return self._json({"paths": discovery.root_paths(self.types)})
            return None
        if p.version is None:
            if method != "GET":
                return None
            return self._json(
                discovery.api_versions(self._address())
                if p.group == ""
                else discovery.api_group(self.types, p.group)
            )
        if p.plural is None:
            if method != "GET":
                return None
            return self._json(discovery.resource_list(self.types, p.group, p.version))
        return await self._resource_requests.serve(request, method, p)
