"""The validating admission webhook: reviews of the three resources (``core.admission``).

Served by kopf's own ``WebhookServer`` over HTTPS when ``RANKOPS_WEBHOOK_PORT`` is set (the
Helm chart sets it with ``webhook.enabled``); the chart's ValidatingWebhookConfiguration sends
``/validate/<plural>`` to it, and kopf routes each path to the handler with that id
(``handlers.register_admission``). Configuration from the environment:

- ``RANKOPS_WEBHOOK_PORT``: serve admission reviews on this port; unset: no webhook;
- ``RANKOPS_WEBHOOK_HOST`` (``0.0.0.0``);
- ``RANKOPS_WEBHOOK_CERT_DIR``: ``tls.crt`` and ``tls.key`` (a mounted Secret, from Helm or
  cert-manager); required with a port. kopf re-reads them every minute, so a renewed
  certificate is served without a restart.

Only a spec change is reviewed: an UPDATE that leaves ``spec`` as it was (kopf's own finalizer
and annotation writes, labels, a deletion's finalizer removal) is always admitted, so an object
that became invalid around its spec (its QualitySLO deleted) can still be cleaned up.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rankops.operator import api
from rankops.operator.adapters.kube import KubeClient, resource_path
from rankops.operator.core.admission import (
    Review,
    review_maintenance_window,
    review_quality_slo,
    review_ranking_model,
    slo_reference,
)

__all__ = ["AdmissionController", "WebhookConfig"]


@dataclasses.dataclass(frozen=True)
class WebhookConfig:
    port: int
    cert_dir: Path
    host: str = "0.0.0.0"

    @property
    def certfile(self) -> Path:
        return self.cert_dir / "tls.crt"

    @property
    def pkeyfile(self) -> Path:
        return self.cert_dir / "tls.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookConfig | None:
        """None when no webhook is configured; ValueError naming the variable when it is wrong."""
        env = os.environ if env is None else env
        raw_port = env.get("RANKOPS_WEBHOOK_PORT", "").strip()
        if not raw_port:
            return None
        if not raw_port.isdigit() or not 0 < int(raw_port) <= 65535:
            raise ValueError(f"RANKOPS_WEBHOOK_PORT must be a port number, got {raw_port!r}")
        raw_dir = env.get("RANKOPS_WEBHOOK_CERT_DIR", "").strip()
        if not raw_dir:
            raise ValueError(
                "RANKOPS_WEBHOOK_PORT is set but RANKOPS_WEBHOOK_CERT_DIR is not: "
                "the API server calls webhooks over HTTPS only (tls.crt and tls.key)"
            )
        config = cls(int(raw_port), Path(raw_dir), env.get("RANKOPS_WEBHOOK_HOST", "").strip() or "0.0.0.0")
        missing = [str(p) for p in (config.certfile, config.pkeyfile) if not p.is_file()]
        if missing:
            raise ValueError(f"RANKOPS_WEBHOOK_CERT_DIR: missing {', '.join(missing)}")
        return config


class AdmissionController:
    """Reviews an admission request's object; the kopf handler turns the review into an answer."""

    def __init__(self, kube: KubeClient, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.kube = kube
        self.clock = clock

    @staticmethod
    def needs_review(
        operation: str | None, new: Mapping[str, Any] | None, old: Mapping[str, Any] | None
    ) -> bool:
        if operation == "CREATE":
            return True
        if operation != "UPDATE" or new is None:
            return False
        return (new.get("spec") or {}) != ((old or {}).get("spec") or {})

    async def review(self, kind: str, namespace: str, body: Mapping[str, Any]) -> Review:
        spec = body.get("spec") or {}
        if kind == api.RANKING_MODEL:
            slo_name = slo_reference(spec)
            slo = None
            if slo_name is not None:
                slo = await self.kube.get(resource_path(api.QUALITY_SLO, namespace, slo_name))
            return review_ranking_model(spec, namespace, slo)
        if kind == api.QUALITY_SLO:
            return review_quality_slo(spec)
        if kind == api.MAINTENANCE_WINDOW:
            return review_maintenance_window(spec, self.clock())
        raise ValueError(f"no admission review for kind {kind!r}")
