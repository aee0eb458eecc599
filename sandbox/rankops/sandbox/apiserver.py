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

- no authentication, authorization or admission webhooks: any client may do anything;
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
import base64
import contextlib
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
from rankops.sandbox.errors import ApiError, status_body
from rankops.sandbox.registry import BUILTINS, ResourceType, load_manifests
from rankops.sandbox.runner import ThreadedServer
from rankops.sandbox.semantics import Cluster
from rankops.sandbox.store import Event, Store
from rankops.sandbox.tables import build_table

__all__ = ["SandboxAPIServer", "ThreadedServer", "load_manifests"]

T = TypeVar("T")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
JSON_CT = "application/json"


# ---------------------------------------------------------------------------------------------
# URL parsing (kmock 0.8's parser fails on `/api/v1/namespaces` and cluster-scoped objects)


@attrs.frozen
class Path:
    group: str | None = None  # None: not an API path
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_api_path(path: str) -> Path:
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return Path()
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        if len(parts) < 2:
            return Path()
        group, rest = parts[1], parts[2:]
    if not rest:
        return Path(group=group)
    version, rest = rest[0], rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":  # /namespaces/{ns}/{plural}...
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return Path(group, version, plural, namespace, name, sub)


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
    real server; False creates missing namespaces on the fly).
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

    cluster: Cluster = attrs.field(init=False)
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
        return await self._serve_resource(request, method, p)

    # -- resources: HTTP routing -------------------------------------------------------------

    async def _serve_resource(
        self, request: rendering.Request, method: str, p: Path
    ) -> aiohttp.web.StreamResponse:
        assert p.group is not None and p.version is not None and p.plural is not None
        rt = self.types.get((p.group, p.version, p.plural))
        if rt is None:
            raise ApiError.not_served(request.url.path)
        if p.namespace is not None and not rt.namespaced:
            raise ApiError.not_served(request.url.path)
        if p.subresource and (p.subresource not in rt.subresources or p.name is None):
            raise ApiError.not_served(request.url.path)
        params = dict(request.params)
        ns = p.namespace
        if rt.namespaced and ns is None and (p.name is not None or method == "POST"):
            raise ApiError.not_served(request.url.path)
        accept = request.headers.get("Accept", "")
        as_table = "as=Table" in accept

        if method == "GET":
            if params.get("watch") in ("true", "1"):
                if p.name is not None:
                    sel = params.get("fieldSelector")
                    params["fieldSelector"] = f"metadata.name={p.name}" + (f",{sel}" if sel else "")
                return await self._watch(request, rt, ns, params, as_table)
            if p.name is None:
                items, list_meta = self._paginate(self.cluster.list(rt, ns, params), params)
                if as_table:
                    table = build_table(
                        items, rt.printer_columns, str(self.store.rv), params.get("includeObject", "Metadata")
                    )
                    table["metadata"].update(list_meta)
                    return self._json(table)
                return self._json(
                    {
                        "kind": f"{rt.kind}List",
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(self.store.rv), **list_meta},
                        "items": items,
                    }
                )
            obj = self.cluster.get(rt, ns, p.name)
            if p.subresource == "scale":
                return self._json(self.cluster.scale_of(rt, obj))
            if as_table:
                return self._json(
                    build_table(
                        [obj], rt.printer_columns, str(self.store.rv), params.get("includeObject", "Metadata")
                    )
                )
            return self._json(obj)

        body = self._parse_body(request)
        self.cluster.warnings.clear()
        if method == "POST":
            if p.name is not None:
                raise ApiError.method_not_allowed()
            if not isinstance(body, dict):
                raise ApiError.bad_request("the body of the request must be a JSON object")
            return self._json(self.cluster.create(rt, ns, body, params), 201)
        if method == "PUT":
            if p.name is None:
                raise ApiError.method_not_allowed()
            if not isinstance(body, dict):
                raise ApiError.bad_request("the body of the request must be a JSON object")
            if p.subresource == "scale":
                return self._json(self.cluster.write_scale(rt, ns, p.name, body, params))
            return self._json(self.cluster.update(rt, ns, p.name, body, p.subresource, params))
        if method == "PATCH":
            if p.name is None:
                raise ApiError.method_not_allowed()
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            existed = self.store.get(self.cluster.key(rt, ns, p.name)) is not None
            obj = self.cluster.patch(rt, ns, p.name, content_type, request.text, p.subresource, params)
            return self._json(obj, 200 if existed else 201)  # 201: server-side apply created it
        if method == "DELETE":
            options = body if isinstance(body, dict) else {}
            for k in ("propagationPolicy", "gracePeriodSeconds"):
                if k in params:
                    options.setdefault(k, params[k])
            if p.name is None:
                return self._json(self.cluster.delete_collection(rt, ns, params, options))
            return self._json(self.cluster.delete(rt, ns, p.name, options, dry_run="dryRun" in params))
        raise ApiError.method_not_allowed()

    @staticmethod
    def _paginate(
        items: list[dict[str, Any]], params: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``limit``/``continue``: pages in (namespace, name) order.

        DIFFERENCE: a continued list shows the objects as they are now, not as a snapshot at
        the first page's resourceVersion, and continue tokens never expire (no 410).
        """
        start = 0
        token = params.get("continue")
        if token:
            try:
                last = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError as exc:
                raise ApiError.bad_request(f"continue key is not valid: {exc}") from exc
            keys = [[i["metadata"].get("namespace", ""), i["metadata"]["name"]] for i in items]
            start = next((n for n, key in enumerate(keys) if key > last), len(items))
        try:
            limit = int(params.get("limit") or 0)
        except ValueError as exc:
            raise ApiError.bad_request(f"invalid limit: {exc}") from exc
        page = items[start : start + limit] if limit > 0 else items[start:]
        meta: dict[str, Any] = {}
        remaining = len(items) - start - len(page)
        if remaining > 0 and page:
            last_meta = page[-1]["metadata"]
            key = json.dumps([last_meta.get("namespace", ""), last_meta["name"]])
            meta["continue"] = base64.urlsafe_b64encode(key.encode()).decode()
            meta["remainingItemCount"] = remaining
        return page, meta

    @staticmethod
    def _parse_body(request: rendering.Request) -> Any:
        if request.data is not None:
            return request.data
        if not request.text.strip():
            return None
        try:
            return yaml.safe_load(request.text)
        except yaml.YAMLError as exc:
            raise ApiError.bad_request(f"the body of the request could not be decoded: {exc}") from exc

    # -- reads -----------------------------------------------------------------------------------

    async def _watch(
        self,
        request: rendering.Request,
        rt: ResourceType,
        ns: str | None,
        params: Mapping[str, str],
        as_table: bool,
    ) -> aiohttp.web.StreamResponse:
        match = self.cluster.predicates(params)
        timeout = float(params.get("timeoutSeconds") or 0) or None
        rv_text = params.get("resourceVersion") or ""
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        def visible(ev: Event) -> str | None:
            """The event type this watcher sees, or None. As a real server does, a change that
            moves an object into the selection is ADDED and one that moves it out is DELETED."""
            if ev.group != rt.group or ev.plural != rt.plural:
                return None
            meta = ev.object.get("metadata") or {}
            if ns is not None and meta.get("namespace") != ns:
                return None
            now = match(ev.object)
            if ev.type != "MODIFIED" or ev.previous is None:
                return ev.type if now else None
            before = match(ev.previous)
            if now:
                return "MODIFIED" if before else "ADDED"
            return "DELETED" if before else None

        # Subscribe and take the snapshot in one step (no await between): nothing is lost.
        initial: list[Event]
        gone = False
        if rv_text in ("", "0"):
            initial = [
                Event(0, rt.group, rt.plural, "ADDED", o) for o in self.store.items(rt.group, rt.plural, ns)
            ]
        else:
            try:
                since = int(rv_text)
            except ValueError as exc:
                raise ApiError.bad_request(f"invalid resourceVersion: {rv_text!r}") from exc
            gone = since < self.store.oldest_replayable
            initial = [] if gone else self.store.events_since(since, rt.group, rt.plural)
        self.store.subscribers.add(queue)

        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": JSON_CT})
        response.enable_chunked_encoding()

        async def send(ev_type: str, obj: Mapping[str, Any]) -> None:
            payload: Mapping[str, Any] = obj
            if as_table and ev_type in ("ADDED", "MODIFIED", "DELETED"):
                payload = build_table(
                    [obj],
                    rt.printer_columns,
                    obj["metadata"].get("resourceVersion", ""),
                    params.get("includeObject", "Metadata"),
                )
            await response.write(json.dumps({"type": ev_type, "object": payload}).encode() + b"\n")

        try:
            await response.prepare(raw)
            if gone:
                await send("ERROR", status_body(ApiError.gone(rv_text)))
                return response
            for ev in initial:
                if seen_as := visible(ev):
                    await send(seen_as, self.cluster.present(rt, ev.object))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout else None
            bookmark_every = 10.0
            next_bookmark = loop.time() + bookmark_every
            while not self._closing:
                # Wake up at least every second to notice a client that went away (aiohttp
                # does not cancel handlers on disconnect), to send bookmarks and to time out.
                wait = 1.0
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    wait = min(left, wait)
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if raw.transport is None or raw.transport.is_closing():
                        return response
                    if bookmarks and loop.time() >= next_bookmark and not self._closing:
                        next_bookmark = loop.time() + bookmark_every
                        await send(
                            "BOOKMARK",
                            {
                                "kind": rt.kind,
                                "apiVersion": rt.api_version,
                                "metadata": {"resourceVersion": str(self.store.rv)},
                            },
                        )
                    continue
                if item is None:
                    break
                if seen_as := visible(item):
                    await send(seen_as, self.cluster.present(rt, item.object))
        except ConnectionResetError:
            return response  # the client went away
        finally:
            self.store.subscribers.discard(queue)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    # -- writes: create ----------------------------------------------------------------------

    # -- writes: update / patch ----------------------------------------------------------------

    # -- writes: delete ----------------------------------------------------------------------------
