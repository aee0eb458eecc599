"""Operator configuration, read from the environment (the CLI flags set the same variables).

- ``RANKOPS_APISERVER_URL`` (unset): talk to this API server without credentials (emulator,
  ``kubectl proxy``); unset: in-cluster service account, else kubeconfig. Read where the
  operator logs in (``adapters.kube.connection_info``), as kopf's login handlers run first.
- ``RANKOPS_PROMETHEUS_URL`` (``http://prometheus-operated.monitoring.svc:9090``): Prometheus
  HTTP API base URL.
- ``RANKOPS_PROMETHEUS_TIMEOUT`` (``5``): seconds per Prometheus query.
- ``RANKOPS_ANALYSIS_INTERVAL`` (unset): override every RankingModel's
  ``spec.rollout.analysis.interval`` (seconds).
- ``RANKOPS_RESYNC_INTERVAL`` (``60``): reconcile every model at least this often (repairs
  drifted children); the plan's own requeue times come first.
- ``RANKOPS_WATCH_TIMEOUT`` (``300``): kopf ``watching.server_timeout`` in seconds; short in tests.
- ``RANKOPS_METRICS_PORT`` (unset): serve the operator's own metrics (``rankops_maintenance_*``,
  ``rankops_backup_*``, ``rankops_drift_*``) on this port at ``/metrics``; unset: not served.
- ``RANKOPS_EVENTS_LEVEL`` (``WARNING``): kopf log records at or above this level are also
  posted as Events (the rollout's own Events are always posted).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    prometheus_timeout: float = 5.0
    analysis_interval: float | None = None
    watch_timeout: float = 300.0
    resync_interval: float = 60.0
    min_requeue: float = 0.05
    settle_requeue: float = 0.1
    events_level: int = logging.WARNING
    metrics_port: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        defaults = cls()

        def seconds(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw.rstrip("s"))
            except ValueError as exc:
                raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from exc
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {raw!r}")
            return value

        level_name = env.get("RANKOPS_EVENTS_LEVEL", logging.getLevelName(defaults.events_level)).upper()
        level = logging.getLevelName(level_name)
        if not isinstance(level, int):
            raise ValueError(f"RANKOPS_EVENTS_LEVEL: unknown level {level_name!r}")
        override = env.get("RANKOPS_ANALYSIS_INTERVAL", "").strip()  # unset: each spec's own interval
        port_raw = env.get("RANKOPS_METRICS_PORT", "").strip()
        if port_raw and not (port_raw.isdigit() and 0 <= int(port_raw) <= 65535):
            raise ValueError(f"RANKOPS_METRICS_PORT must be a port number, got {port_raw!r}")
        return cls(
            prometheus_url=env.get("RANKOPS_PROMETHEUS_URL") or defaults.prometheus_url,
            prometheus_timeout=seconds("RANKOPS_PROMETHEUS_TIMEOUT", defaults.prometheus_timeout),
            analysis_interval=seconds("RANKOPS_ANALYSIS_INTERVAL", 0.0)
            if override
            else defaults.analysis_interval,
            watch_timeout=seconds("RANKOPS_WATCH_TIMEOUT", defaults.watch_timeout),
            resync_interval=seconds("RANKOPS_RESYNC_INTERVAL", defaults.resync_interval),
            events_level=level,
            metrics_port=int(port_raw) if port_raw else defaults.metrics_port,
        )
