"""The remediation ladder's hands on a model's serving pods.

- ``invalidate_caches(namespace, service, quality_threshold)``: ``POST
  /api/v2/cache/invalidate`` (``{"quality_threshold": t, "force_refresh": true}``, as the
  runbook does) on every ready endpoint of the track's Service, found through its
  EndpointSlices (``kubernetes.io/service-name``): the addresses and resolved target port a
  real cluster publishes, so the operator reaches each pod, not a load-balanced one.
  Returns how many answered 2xx and what failed; one pod failing does not stop the others.
- ``rolling_restart(namespace, deployment, at)``: a pod-template annotation
  ``rankops.dev/restartedAt`` (what ``kubectl rollout restart`` does), so the Deployment
  replaces its pods under its own rolling-update rules. The children applier compares only
  the fields it builds, so it keeps the annotation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlencode

import aiohttp

from rankops.operator.core.timeutil import format_time

from .kube import KubeClient, resource_path

__all__ = ["RESTARTED_AT", "InvalidateOutcome", "ServingPods"]

RESTARTED_AT = "rankops.dev/restartedAt"
INVALIDATE_PATH = "/api/v2/cache/invalidate"


@dataclass(frozen=True)
class InvalidateOutcome:
    total: int
    succeeded: int
    errors: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        text = f"{self.succeeded}/{self.total} pods invalidated"
        return text + (f"; failed: {'; '.join(self.errors[:3])}" if self.errors else "")


class ServingPods:
    def __init__(self, client: KubeClient, *, timeout_s: float = 5.0) -> None:
        self.client = client
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def endpoints(self, namespace: str, service: str) -> list[tuple[str, str]]:
        """``[(pod name, base URL)]`` of the Service's ready endpoints."""
        path = f"/apis/discovery.k8s.io/v1/namespaces/{quote(namespace)}/endpointslices?" + urlencode(
            {"labelSelector": f"kubernetes.io/service-name={service}"}
        )
        result = await self.client.request("GET", path)
        out: list[tuple[str, str]] = []
        for es in (result or {}).get("items") or []:
            ports = es.get("ports") or []
            port = next((p.get("port") for p in ports if p.get("port")), None)
            if port is None:
                continue
            for ep in es.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False or not ep.get("addresses"):
                    continue
                host = str(ep["addresses"][0])
                host = f"[{host}]" if ":" in host else host
                pod = str((ep.get("targetRef") or {}).get("name") or host)
                out.append((pod, f"http://{host}:{port}"))
        return out

    async def invalidate_caches(
        self, namespace: str, service: str, quality_threshold: float
    ) -> InvalidateOutcome:
        targets = await self.endpoints(namespace, service)
        body = {"quality_threshold": quality_threshold, "force_refresh": True}
        async with aiohttp.ClientSession(timeout=self.timeout) as session:

            async def one(pod: str, base: str) -> str | None:
                try:
                    async with session.post(base + INVALIDATE_PATH, json=body) as response:
                        if response.status < 300:
                            return None
                        return f"{pod}: HTTP {response.status} {(await response.text())[:120]}"
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    return f"{pod}: {type(exc).__name__} {exc}"

            errors = [e for e in await asyncio.gather(*(one(p, b) for p, b in targets)) if e]
        return InvalidateOutcome(len(targets), len(targets) - len(errors), tuple(errors))

    async def rolling_restart(self, namespace: str, deployment: str, at: datetime) -> None:
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: format_time(at)}}}}}
        await self.client.merge_patch(resource_path("Deployment", namespace, deployment), patch)
