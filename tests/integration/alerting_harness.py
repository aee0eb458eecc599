"""A real Alertmanager (Debian ``prometheus-alertmanager``) on loopback for the integration tests
and the breach-to-action benchmark, and a real Prometheus that evaluates rule files and sends
to it.

- :class:`Alertmanager`: one webhook receiver (``url``, bearer token from a file), grouping by
  ``rankingmodel``/``namespace``/``alertname``, short ``group_wait``/``group_interval``;
  ``post_alerts`` is Alertmanager's own API v2 (what Prometheus calls).
- :class:`RulingPrometheus`: scrapes static targets (with the labels service discovery would
  add, e.g. ``namespace``), loads ``rules.yaml`` from its directory (reloaded through
  ``/-/reload``), sends alerts to an Alertmanager.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.integration.harness import PROMETHEUS_BIN, _stop_process, free_port, http_json, wait_for

ALERTMANAGER_BIN = (
    os.environ.get("RANKOPS_ALERTMANAGER_BIN")
    or shutil.which("prometheus-alertmanager")
    or shutil.which("alertmanager")
    or "/usr/bin/prometheus-alertmanager"
)


def alertmanager_available() -> bool:
    return os.path.isfile(ALERTMANAGER_BIN) and os.access(ALERTMANAGER_BIN, os.X_OK)


def _ready(url: str, proc: subprocess.Popen[Any], log: Path, what: str) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Alertmanager:
    def __init__(
        self,
        webhook_url: str,
        token_file: Path | None,
        *,
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        ca_file: Path | None = None,
    ) -> None:
        if not alertmanager_available():
            raise FileNotFoundError(f"alertmanager binary not found at {ALERTMANAGER_BIN}")
        self.dir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        http_config: dict[str, Any] = {}
        if token_file is not None:
            http_config["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
        if ca_file is not None:
            http_config["tls_config"] = {"ca_file": str(ca_file)}
        webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True, "max_alerts": 0}
        if http_config:
            webhook["http_config"] = http_config
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
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.log_path = self.dir / "alertmanager.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER_BIN,
                f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # one instance, no gossip port
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: _ready(self.url, self.proc, self.log_path, "alertmanager"),
                30,
                0.1,
                "Alertmanager ready",
            )
        except BaseException:
            self.stop()
            raise

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        http_json(f"{self.url}/api/v2/alerts", alerts)

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts")
        return result

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        _stop_process(self.proc)
        with contextlib.suppress(Exception):
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class RulingPrometheus:
    """A real Prometheus evaluating ``rules`` (a rule-file dict) and alerting ``alertmanager``."""

    def __init__(
        self,
        targets: list[str],
        alertmanager: str | None,
        rules: dict[str, Any] | None = None,
        *,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        labels: dict[str, str] | None = None,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-rules-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rules_file = self.dir / "rules.yaml"
        self.set_rules(rules or {"groups": []}, reload=False)
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "evaluation_interval": evaluation_interval,
            },
            "rule_files": [str(self.rules_file)],
            # ``labels``: what Kubernetes service discovery would attach (``namespace``)
            "scrape_configs": [
                {
                    "job_name": "rankops",
                    "static_configs": [{"targets": targets, "labels": dict(labels or {})}],
                }
            ],
        }
        if alertmanager:
            host = alertmanager.removeprefix("http://")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = self.dir / "prometheus.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                PROMETHEUS_BIN,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: _ready(self.url, self.proc, self.log_path, "prometheus"), 30, 0.1, "Prometheus ready"
            )
        except BaseException:
            self.stop()
            raise

    def set_rules(self, rules: dict[str, Any], reload: bool = True) -> None:
        tmp = self.rules_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(rules, sort_keys=False))
        os.replace(tmp, self.rules_file)
        if reload:
            request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
            with urllib.request.urlopen(request, timeout=10):
                pass

    def wait_up(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` targets are scraped (Prometheus starts scraping only after its first
        discovery round, about 5 s in)."""

        def up() -> bool:
            data = http_json(f"{self.url}/api/v1/targets?state=active")["data"]["activeTargets"]
            return sum(t["health"] == "up" for t in data) >= count

        wait_for(up, timeout, 0.2, f"Prometheus to scrape {count} targets")

    def firing(self) -> list[dict[str, Any]]:
        data = http_json(f"{self.url}/api/v1/alerts")
        return [a for a in data["data"]["alerts"] if a["state"] == "firing"]

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = http_json(f"{self.url}/api/v1/rules")["data"]["groups"]
        return groups

    def stop(self) -> None:
        _stop_process(self.proc)
        with contextlib.suppress(Exception):
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1)[:3000]
