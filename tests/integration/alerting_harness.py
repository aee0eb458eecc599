"""A real Alertmanager (Debian ``prometheus-alertmanager``) on loopback for the integration tests
and the breach-to-action benchmark (the Prometheus that alerts it is ``harness.Prometheus`` with
``rules`` and ``alertmanager``).

- :class:`Alertmanager`: one webhook receiver (``url``, bearer token from a file), grouping by
  ``rankingmodel``/``namespace``/``alertname``, short ``group_wait``/``group_interval``;
  ``post_alerts`` is Alertmanager's own API v2 (what Prometheus calls).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.integration.harness import LoopbackDaemon, http_json

ALERTMANAGER_BIN = (
    os.environ.get("RANKOPS_ALERTMANAGER_BIN")
    or shutil.which("prometheus-alertmanager")
    or shutil.which("alertmanager")
    or "/usr/bin/prometheus-alertmanager"
)


def alertmanager_available() -> bool:
    return os.path.isfile(ALERTMANAGER_BIN) and os.access(ALERTMANAGER_BIN, os.X_OK)


class Alertmanager(LoopbackDaemon):
    what = "alertmanager"

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
        super().__init__(None, "alertmanager-")
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
        self._start(
            [
                ALERTMANAGER_BIN,
                f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # one instance, no gossip port
                "--log.level=warn",
            ]
        )

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        http_json(f"{self.url}/api/v2/alerts", alerts)

    def alerts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = http_json(f"{self.url}/api/v2/alerts")
        return result
