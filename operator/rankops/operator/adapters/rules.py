"""Writes a QualitySLO's alert rules as a ``PrometheusRule`` where the Prometheus Operator's API
(``monitoring.coreos.com/v1``) is served; elsewhere it does nothing and says so once.

``PrometheusRuleWriter(client).apply(obj) -> str``: ``created``, ``updated``, ``unchanged`` or
``unserved``. Whether the API is served is asked through discovery
(``GET /apis/monitoring.coreos.com/v1``) and remembered for ``recheck_s``, so installing the
Prometheus Operator later is noticed without a restart and an absent one costs one request per
``recheck_s``, not one per evaluation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .kube import ApiError, KubeClient

__all__ = ["GROUP_VERSION", "PrometheusRuleWriter"]

logger = logging.getLogger(__name__)

GROUP_VERSION = "monitoring.coreos.com/v1"
PLURAL = "prometheusrules"


def rule_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/{GROUP_VERSION}/namespaces/{quote(namespace)}/{PLURAL}"
    return f"{path}/{quote(name)}" if name else path


class PrometheusRuleWriter:
    def __init__(
        self, client: KubeClient, *, recheck_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.recheck_s = recheck_s
        self._clock = clock
        self._served: bool | None = None
        self._checked_at = 0.0

    async def served(self) -> bool:
        now = self._clock()
        if self._served is None or now - self._checked_at >= self.recheck_s:
            try:
                resources = await self.client.get(f"/apis/{GROUP_VERSION}")
            except ApiError as exc:
                logger.warning("discovery of %s failed (%s); not writing PrometheusRules", GROUP_VERSION, exc)
                resources = None
            served = bool(resources) and any(
                r.get("name") == PLURAL for r in (resources or {}).get("resources", [])
            )
            if served != self._served:
                logger.info(
                    "%s %s: PrometheusRules %s",
                    GROUP_VERSION,
                    "served" if served else "not served",
                    "written" if served else "skipped (print them with `rankops slo rules`)",
                )
            self._served, self._checked_at = served, now
        return bool(self._served)

    async def apply(self, desired: Mapping[str, Any]) -> str:
        if not await self.served():
            return "unserved"
        meta = desired["metadata"]
        path = rule_path(meta["namespace"], meta["name"])
        actual = await self.client.get(path)
        if actual is None:
            await self.client.create(rule_path(meta["namespace"]), dict(desired))
            return "created"
        actual_meta = actual.get("metadata", {})
        same = actual.get("spec") == desired["spec"] and all(
            actual_meta.get("labels", {}).get(k) == v for k, v in meta.get("labels", {}).items()
        )
        if same:
            return "unchanged"
        patch: dict[str, Any] = {
            "metadata": {"labels": dict(meta.get("labels", {}))},
            "spec": desired["spec"],
        }
        await self.client.merge_patch(path, patch)
        return "updated"

    async def delete(self, namespace: str, name: str) -> None:
        if await self.served():
            await self.client.delete(rule_path(namespace, name))
