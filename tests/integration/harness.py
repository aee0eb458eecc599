"""Process helpers for the integration tests and the rollback-latency benchmark.

- :class:`Prometheus`: a real Prometheus on loopback (1 s scrape/evaluation), targets from a
  ``file_sd`` file so exporters can be added while it runs.
- :class:`Exporter`: one ``ndcg_exporter.py`` process per track, controllable at run time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXPORTER = HERE / "ndcg_exporter.py"
PROMETHEUS_BIN = (
    os.environ.get("RANKOPS_PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
)


def crd_manifests(crds_dir: Path | None = None) -> list[dict[str, Any]]:
    """The real CRDs from ``crds/``, as dicts for ``SandboxAPIServer(crds=...)``."""
    import yaml

    docs: list[dict[str, Any]] = []
    for path in sorted((crds_dir or ROOT / "crds").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, data: Any = None, timeout: float = 5.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_for(predicate: Any, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # keep polling; report the last error on timeout
            last_exc = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else "")
    )


def _stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class Exporter:
    """One exporter process for one track; ``set(mean=0.3)`` changes the stream at once."""

    def __init__(
        self,
        model: str,
        version: str,
        track: str,
        *,
        mean: float = 0.8,
        sd: float = 0.05,
        rate: float = 50.0,
        seed: int | None = None,
        max_seconds: float = 900.0,
    ) -> None:
        self.model, self.track = model, track
        self._dir = tempfile.mkdtemp(prefix=f"exporter-{track}-")
        port_file = os.path.join(self._dir, "port")
        args = [
            sys.executable,
            str(EXPORTER),
            "--port",
            "0",
            "--port-file",
            port_file,
            "--model",
            model,
            "--version",
            version,
            "--track",
            track,
            "--mean",
            str(mean),
            "--sd",
            str(sd),
            "--rate",
            str(rate),
            "--max-seconds",
            str(max_seconds),
        ]
        if seed is not None:
            args += ["--seed", str(seed)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(
            lambda: os.path.exists(port_file) or self.proc.poll() is not None,
            15,
            0.02,
            f"exporter {track} to listen",
        )
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"exporter {track} died: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
            )
        self.port = int(Path(port_file).read_text())
        self.address = f"127.0.0.1:{self.port}"

    def set(self, **changes: Any) -> dict[str, Any]:
        """Change the stream (mean, sd, rate, version, golden); returns settings with ``applied_at``."""
        result: dict[str, Any] = http_json(f"http://{self.address}/control", changes)
        return result

    def get(self) -> dict[str, Any]:
        result: dict[str, Any] = http_json(f"http://{self.address}/control")
        return result

    def stop(self) -> None:
        _stop_process(self.proc)
        shutil.rmtree(self._dir, ignore_errors=True)


class Prometheus:
    """A real Prometheus on a free loopback port, scraping ``file_sd`` targets every second."""

    def __init__(
        self, targets: list[str] | None = None, workdir: str | None = None, scrape_interval: float = 1.0
    ) -> None:
        if not (os.path.isfile(PROMETHEUS_BIN) and os.access(PROMETHEUS_BIN, os.X_OK)):
            raise FileNotFoundError(f"prometheus binary not found at {PROMETHEUS_BIN}")
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="prometheus-"))
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets_file = self.dir / "targets.json"
        # Known targets go in before the start: Prometheus applies later discoveries only every 5 s.
        self.set_targets(list(targets or []))
        interval = f"{int(scrape_interval * 1000)}ms"
        (self.dir / "prometheus.yml").write_text(
            "global:\n"
            f"  scrape_interval: {interval}\n"
            f"  scrape_timeout: {interval}\n"
            f"  evaluation_interval: {interval}\n"
            "scrape_configs:\n"
            "  - job_name: rankops\n"
            f"    static_configs: [{{targets: {json.dumps(list(targets or []))}}}]\n"
            "    file_sd_configs:\n"
            f"      - files: ['{self.targets_file}']\n"
            "        refresh_interval: 1s\n"
        )
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
            wait_for(self._ready, 30, 0.1, "Prometheus /-/ready")
        except TimeoutError:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def set_targets(self, addresses: list[str]) -> None:
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": addresses, "labels": {}}]))
        os.replace(tmp, self.targets_file)

    def add_targets(self, *addresses: str) -> None:
        current = json.loads(self.targets_file.read_text())[0]["targets"]
        self.set_targets([*current, *addresses])

    def query(self, promql: str) -> Any:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        return http_json(url)

    def wait_scraped(self, *addresses: str, timeout: float = 15.0) -> None:
        """Until every address is an `up` target with samples (scrapes happen every second)."""

        def all_up() -> bool:
            data = http_json(f"{self.url}/api/v1/targets?state=active")
            up = {t["labels"].get("instance") for t in data["data"]["activeTargets"] if t["health"] == "up"}
            return all(a in up for a in addresses)

        wait_for(all_up, timeout, 0.2, f"Prometheus to scrape {addresses}")

    def stop(self) -> None:
        _stop_process(self.proc)
        with contextlib.suppress(Exception):
            self._log.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
