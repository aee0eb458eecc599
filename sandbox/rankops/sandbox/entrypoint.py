"""The sandbox's traffic entry point: an HTTP proxy that honours what the operator set.

``http://127.0.0.1:<port>/<name>/<path>`` forwards ``/<path>`` to a pod:

- ``<name>`` is an HTTPRoute: one of its first rule's ``backendRefs`` (Services) is chosen
  by ``weight`` (as a Gateway implementation splits traffic), then one ready endpoint of that
  Service, round robin;
- ``<name>`` is a Service: one of its ready endpoints, round robin (so with replica-ratio
  routing the tracks' shares are their ready pods' shares).

Routing reads the EndpointSlices and HTTPRoutes in the API (a table rebuilt after every
runtime pass). Feedback must reach the pod that served the ranking (each pod keeps its own
record of what it showed), so a ``request_id`` seen in a ranking response pins later
``/v1/feedback`` requests carrying it to the same pod. Responses carry
``x-sandbox-pod`` (the pod that answered). No ready endpoint: 503 with a JSON message.
"""

from __future__ import annotations

import collections
import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.web

from rankops.sandbox.endpoints import SERVICE_LABEL
from rankops.sandbox.objects import Snapshot

__all__ = ["EntryPoint", "RoutingTable"]

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


@dataclass(frozen=True)
class Endpoint:
    pod: str
    address: str  # host:port


@dataclass
class RoutingTable:
    services: dict[str, list[Endpoint]] = field(default_factory=dict)  # ready endpoints
    routes: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # (service, weight)

    @classmethod
    def from_snapshot(cls, snap: Snapshot, namespace: str) -> RoutingTable:
        table = cls()
        for es in snap.of("discovery.k8s.io", "endpointslices", namespace):
            svc = (es["metadata"].get("labels") or {}).get(SERVICE_LABEL)
            ports = es.get("ports") or []
            if not svc or not ports:
                continue
            bucket = table.services.setdefault(svc, [])
            for ep in es.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready"):
                    pod = (ep.get("targetRef") or {}).get("name", "")
                    bucket.extend(Endpoint(pod, f"{a}:{ports[0]['port']}") for a in ep.get("addresses") or [])
        for route in snap.of("gateway.networking.k8s.io", "httproutes", namespace):
            rules = (route.get("spec") or {}).get("rules") or []
            refs = (rules[0].get("backendRefs") or []) if rules else []
            table.routes[route["metadata"]["name"]] = [
                (str(r.get("name")), int(r.get("weight", 1)))
                for r in refs
                if r.get("kind", "Service") == "Service"
            ]
        return table


class EntryPoint:
    """Runs in the API server's loop; ``update(snapshot)`` is a runtime listener."""

    def __init__(self, namespace: str = "default", host: str = "127.0.0.1", port: int = 0) -> None:
        self.namespace, self.host, self.port = namespace, host, port
        self.table = RoutingTable()
        self._rr: dict[str, itertools.count[int]] = collections.defaultdict(itertools.count)
        self._pinned: collections.OrderedDict[str, Endpoint] = collections.OrderedDict()
        self._runner: aiohttp.web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._random = random.Random(7)
        self.url = ""

    def update(self, snap: Snapshot) -> None:
        self.table = RoutingTable.from_snapshot(snap, self.namespace)

    async def start(self) -> None:
        app = aiohttp.web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{name}/{path:.*}", self._forward)
        self._runner = aiohttp.web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self.url = f"http://{self.host}:{self.port}"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10), connector=aiohttp.TCPConnector(limit=256)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def choose(self, name: str) -> Endpoint | None:
        service = name
        refs = self.table.routes.get(name)
        if refs is not None:
            live = [(s, w) for s, w in refs if w > 0 and self.table.services.get(s)]
            if not live:
                return None
            pick = self._random.uniform(0, sum(w for _, w in live))
            for s, w in live:
                service = s
                pick -= w
                if pick <= 0:
                    break
        endpoints = self.table.services.get(service) or []
        if not endpoints:
            return None
        return endpoints[next(self._rr[service]) % len(endpoints)]

    def _pin(self, body: bytes, endpoint: Endpoint) -> None:
        try:
            request_id = json.loads(body).get("request_id")
        except (ValueError, AttributeError):
            return
        if isinstance(request_id, str):
            self._pinned[request_id] = endpoint
            if len(self._pinned) > 100_000:
                self._pinned.popitem(last=False)

    def _pinned_for(self, body: bytes) -> Endpoint | None:
        try:
            request_id = json.loads(body).get("request_id")
        except (ValueError, AttributeError):
            return None
        return self._pinned.get(request_id) if isinstance(request_id, str) else None

    async def _forward(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        assert self._session is not None
        name, path = request.match_info["name"], request.match_info["path"]
        body = await request.read()
        feedback = path.rstrip("/").endswith("feedback")
        endpoint = self._pinned_for(body) if feedback else None
        endpoint = endpoint or self.choose(name)
        if endpoint is None:
            return _error(503, f"no ready endpoint behind {name!r} in namespace {self.namespace!r}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        url = f"http://{endpoint.address}/{path}" + (
            f"?{request.query_string}" if request.query_string else ""
        )
        try:
            async with self._session.request(
                request.method, url, data=body or None, headers=headers
            ) as upstream:
                payload = await upstream.read()
                status = upstream.status
                out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return _error(502, f"pod {endpoint.pod} did not answer: {exc}")
        if status == 200 and path.rstrip("/").endswith("rank"):
            self._pin(payload, endpoint)
        out_headers["x-sandbox-pod"] = endpoint.pod
        return aiohttp.web.Response(body=payload, status=status, headers=out_headers)


def _error(status: int, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response({"error": "unavailable", "detail": message}, status=status)


def describe(table: RoutingTable) -> Mapping[str, Any]:
    return {
        "services": {k: [e.pod for e in v] for k, v in table.services.items()},
        "routes": table.routes,
    }
