"""Alerting in the sandbox: a real Alertmanager (the Debian package's binary) delivering to the
operator's receiver, and the alert rules rankops generates loaded into the sandbox Prometheus.

- :class:`Alertmanager`: one webhook receiver, the operator's ``POST /v1/alerts`` with the
  bearer token from a file (as the Helm chart wires it), grouped by ``alertname``,
  ``rankingmodel`` and ``namespace``, ``group_wait``/``group_interval`` of a second (the
  sandbox's clock runs fast everywhere); one instance, no gossip port.
- :func:`slo_rules`: ``rankops slo rules NAME --apiserver URL`` run as a process, its output the
  rule file Prometheus loads (:meth:`rankops.sandbox.prometheus.Prometheus.load_rules`).
- :func:`alert_states`: what Prometheus (pending, firing, since when) and Alertmanager (which
  alerts it holds) say now, for the demo's timeline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankops.sandbox.processes import ManagedProcess, free_port, wait_http_ready

__all__ = ["AlertState", "Alertmanager", "alert_states", "alertmanager_binary", "slo_rules"]


def alertmanager_binary() -> str | None:
    found = (
        os.environ.get("RANKOPS_ALERTMANAGER_BIN")
        or shutil.which("prometheus-alertmanager")
        or shutil.which("alertmanager")
    )
    if not found and os.access("/usr/bin/prometheus-alertmanager", os.X_OK):
        found = "/usr/bin/prometheus-alertmanager"
    return found


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Alertmanager:
    def __init__(
        self,
        workdir: Path,
        receiver_url: str,
        token_file: Path,
        *,
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
    ) -> None:
        binary = alertmanager_binary()
        if binary is None:
            raise FileNotFoundError(
                "alertmanager not found: install the Debian package `prometheus-alertmanager`"
                " (make prometheus)"
            )
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        # a sandbox is a new cluster each start: series and alerts of an earlier one would fire
        # again here about models that no longer exist (they did, in a second `make demo`)
        shutil.rmtree(self.dir / "data", ignore_errors=True)
        webhook = {
            "url": receiver_url,
            "send_resolved": True,
            "max_alerts": 0,
            "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}},
        }
        config = {
            "route": {
                "receiver": "rankops",
                "group_by": ["alertname", "rankingmodel", "namespace"],
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [{"name": "rankops", "webhook_configs": [webhook]}],
        }
        (self.dir / "alertmanager.yml").write_text(json.dumps(config, indent=1))  # YAML is a JSON superset
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            [
                binary,
                f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # one instance: no gossip port
                "--log.level=warn",
            ],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir)},
            log_path=self.dir / "alertmanager.log",
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_http_ready(self.process, f"{self.url}/-/ready", "Alertmanager", timeout)

    def alerts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = _get_json(f"{self.url}/api/v2/alerts")
        return found

    def stop(self) -> None:
        self.process.stop()


def slo_rules(apiserver: str, name: str, namespace: str, models: Sequence[str] = ()) -> str:
    """The rule file ``rankops slo rules`` prints for QualitySLO ``namespace/name``."""
    argv = [sys.executable, "-m", "rankops.cli", "slo", "rules", name, "-n", namespace]
    argv += ["--apiserver", apiserver]
    for model in models:
        argv += ["--model", model]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rankops slo rules {name} failed: {done.stderr[-2000:]}")
    return done.stdout


@dataclass(frozen=True)
class AlertState:
    """One alert as seen now: ``source`` "prometheus" (state pending/firing) or "alertmanager"."""

    source: str
    alertname: str
    state: str
    labels: dict[str, str]
    since: str  # Prometheus activeAt, or Alertmanager startsAt (RFC 3339)


def alert_states(prometheus: str | None, alertmanager: str | None) -> list[AlertState]:
    out: list[AlertState] = []
    try:
        if prometheus:
            for a in _get_json(f"{prometheus}/api/v1/alerts", 2)["data"]["alerts"]:
                labels = dict(a.get("labels") or {})
                out.append(
                    AlertState(
                        "prometheus", labels.get("alertname", ""), a["state"], labels, a.get("activeAt", "")
                    )
                )
        if alertmanager:
            for a in _get_json(f"{alertmanager}/api/v2/alerts", 2):
                labels = dict(a.get("labels") or {})
                state = str((a.get("status") or {}).get("state", ""))
                name = labels.get("alertname", "")
                out.append(AlertState("alertmanager", name, state, labels, a.get("startsAt", "")))
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        pass  # a poll that fails is retried at the next one
    return out
