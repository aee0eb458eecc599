"""A real Prometheus (the Debian package's binary) for the sandbox, scraping every pod process.

Discovery is file-based: after every runtime pass :meth:`Prometheus.update` writes the
running pods that carry ``prometheus.io/scrape: "true"`` (``podIP:prometheus.io/port``, a
name or number of a declared port; path from ``prometheus.io/path``) with ``namespace`` and
``pod`` labels, as a ``kubernetes_sd`` + relabelling set-up would. Scrapes and rule
evaluations run every ``interval`` seconds; ``rule_files`` are loaded at start, and every
``rules/*.yaml`` of its directory, where :meth:`Prometheus.load_rules` writes a rule file
(``rankops slo rules`` output) and reloads (``/-/reload``, as the config reloader beside a
cluster's Prometheus does). ``alertmanager``: where firing alerts go.
Prometheus itself applies new discoveries at most every 5 s.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankops.sandbox.kubelet import pod_address, pod_ports
from rankops.sandbox.objects import Snapshot
from rankops.sandbox.processes import ManagedProcess, free_port, wait_http_ready

__all__ = ["Prometheus", "prometheus_binary"]


def prometheus_binary() -> str | None:
    found = os.environ.get("RANKOPS_PROMETHEUS_BIN") or shutil.which("prometheus")
    if not found and os.access("/usr/bin/prometheus", os.X_OK):
        found = "/usr/bin/prometheus"
    return found


def _scrape_groups(snap: Snapshot) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for pod in snap.of("", "pods"):
        meta = pod["metadata"]
        notes = meta.get("annotations") or {}
        if notes.get("prometheus.io/scrape") != "true" or (pod.get("status") or {}).get("phase") != "Running":
            continue
        wanted = str(notes.get("prometheus.io/port", ""))
        port = pod_ports(pod).get(wanted) or (int(wanted) if wanted.isdigit() else None)
        ip = pod_address(pod)
        if port is None or ip is None:
            continue
        path = str(notes.get("prometheus.io/path") or "/metrics")
        key = (meta["namespace"], meta["name"])
        groups[key] = {
            "targets": [f"{ip}:{port}"],
            "labels": {"namespace": meta["namespace"], "pod": meta["name"], "__metrics_path__": path},
        }
    return [groups[k] for k in sorted(groups)]


class Prometheus:
    def __init__(
        self,
        workdir: Path,
        *,
        interval: float = 1.0,
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        static_targets: Sequence[str] = (),
    ) -> None:
        binary = prometheus_binary()
        if binary is None:
            raise FileNotFoundError(
                "prometheus not found: install the Debian package `prometheus` (make prometheus)"
            )
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        # a sandbox is a new cluster each start: series and alerts of an earlier one would fire
        # again here about models that no longer exist (they did, in a second `make demo`)
        shutil.rmtree(self.dir / "data", ignore_errors=True)
        self.targets_file = self.dir / "pods.json"
        (self.dir / "rules").mkdir(exist_ok=True)
        self.static_targets = list(static_targets)
        self._last_targets = ""
        self._write_targets([])
        every = f"{int(interval * 1000)}ms"
        config: dict[str, Any] = {
            "global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every},
            "rule_files": [str(p) for p in rule_files] + [str(self.dir / "rules" / "*.yaml")],
            "scrape_configs": [
                {
                    "job_name": "pods",
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
                }
            ],
        }
        if self.static_targets:
            config["scrape_configs"].append(
                {"job_name": "sandbox", "static_configs": [{"targets": self.static_targets}]}
            )
        if alertmanager:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager.split("://")[-1]]}]}]
            }
        (self.dir / "prometheus.yml").write_text(json.dumps(config, indent=1))  # YAML is a JSON superset
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            [
                binary,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                "--storage.tsdb.retention.time=2h",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.dir)},
            log_path=self.dir / "prometheus.log",
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_http_ready(self.process, f"{self.url}/-/ready", "Prometheus", timeout)

    def update(self, snap: Snapshot) -> None:
        """Runtime listener: rewrite the targets file when the scrape targets changed."""
        self._write_targets(_scrape_groups(snap))

    def _write_targets(self, groups: list[dict[str, Any]]) -> None:
        text = json.dumps(groups)
        if text == self._last_targets:
            return
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.targets_file)  # atomic: Prometheus never reads half a file
        self._last_targets = text

    def load_rules(self, name: str, text: str) -> Path:
        """Write rule file ``rules/<name>.yaml`` and have Prometheus reload its configuration."""
        path = self.dir / "rules" / f"{name}.yaml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass
        return path

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules", {})["data"]["groups"]
        return groups

    def query(self, promql: str, at: float | None = None) -> Any:
        params = {"query": promql, **({"time": str(at)} if at is not None else {})}
        return self._get("/api/v1/query", params)

    def query_range(self, promql: str, start: float, end: float, step: float) -> Any:
        return self._get("/api/v1/query_range", {"query": promql, "start": start, "end": end, "step": step})

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.stop()
