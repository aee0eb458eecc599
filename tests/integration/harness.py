"""Process helpers for the integration tests and the rollback-latency benchmark.

- :class:`Prometheus`: a real Prometheus on loopback (1 s scrape/evaluation), targets from a
  ``file_sd`` file so exporters can be added while it runs; optionally evaluating a rule file
  and alerting an Alertmanager.
- :class:`LoopbackDaemon`: what Prometheus and the Alertmanager of ``alerting_harness`` share
  (own directory, log, ready check, stop).
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

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXPORTER = HERE / "ndcg_exporter.py"
PROMETHEUS_BIN = (
    os.environ.get("RANKOPS_PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
)


def crd_manifests(crds_dir: Path | None = None) -> list[dict[str, Any]]:
    """The real CRDs from ``crds/``, as dicts for ``SandboxAPIServer(crds=...)``."""
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


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """``sig`` (a graceful stop by default), ``timeout`` seconds to exit, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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
        stop_process(self.proc)
        shutil.rmtree(self._dir, ignore_errors=True)


def ready(url: str, proc: subprocess.Popen[Any], log: Path, what: str) -> bool:
    """Whether a Prometheus-family daemon answers ``/-/ready``; raises once it has exited."""
    if proc.poll() is not None:
        raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class LoopbackDaemon:
    """A Prometheus-family binary on a free loopback port: its own directory (removed on stop
    unless given), a log file, started and ready before the constructor returns."""

    what = "daemon"

    def __init__(self, workdir: str | None, prefix: str) -> None:
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.dir / f"{self.what}.log"

    def _start(self, argv: list[str]) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

        def up() -> bool:
            return ready(self.url, self.proc, self.log_path, self.what)

        try:
            wait_for(up, 30, 0.1, f"{self.what} ready")
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)
        with contextlib.suppress(Exception):
            self._log.close()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class Prometheus(LoopbackDaemon):
    """A real Prometheus on a free loopback port.

    Scrapes ``targets`` (with ``labels``, what Kubernetes service discovery would attach, e.g.
    ``namespace``) and the ``file_sd`` targets of :meth:`add_targets`. With ``rules`` it
    evaluates a rule file (``set_rules`` replaces it through ``/-/reload``); with
    ``alertmanager`` it sends its alerts there.
    """

    what = "prometheus"

    def __init__(
        self,
        targets: list[str] | None = None,
        workdir: str | None = None,
        scrape_interval: float = 1.0,
        *,
        evaluation_interval: float | None = None,
        labels: dict[str, str] | None = None,
        rules: dict[str, Any] | None = None,
        alertmanager: str | None = None,
    ) -> None:
        if not (os.path.isfile(PROMETHEUS_BIN) and os.access(PROMETHEUS_BIN, os.X_OK)):
            raise FileNotFoundError(f"prometheus binary not found at {PROMETHEUS_BIN}")
        super().__init__(workdir, "prometheus-")
        self.scrape_interval = scrape_interval
        self.targets_file = self.dir / "targets.json"
        self.rules_file = self.dir / "rules.yaml"
        # Known targets go in before the start: Prometheus applies later discoveries only every 5 s.
        self.set_targets(list(targets or []))
        scrape = f"{int(scrape_interval * 1000)}ms"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": scrape,
                "scrape_timeout": scrape,
                "evaluation_interval": f"{int((evaluation_interval or scrape_interval) * 1000)}ms",
            },
            "scrape_configs": [
                {
                    "job_name": "rankops",
                    "static_configs": [{"targets": list(targets or []), "labels": dict(labels or {})}],
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
                }
            ],
        }
        if rules is not None:
            self.set_rules(rules, reload=False)
            config["rule_files"] = [str(self.rules_file)]
        if alertmanager:
            host = alertmanager.removeprefix("http://")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self._start(
            [
                PROMETHEUS_BIN,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ]
        )

    def set_targets(self, addresses: list[str]) -> None:
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": addresses, "labels": {}}]))
        os.replace(tmp, self.targets_file)

    def add_targets(self, *addresses: str) -> None:
        current = json.loads(self.targets_file.read_text())[0]["targets"]
        self.set_targets([*current, *addresses])

    def set_rules(self, rules: dict[str, Any], reload: bool = True) -> None:
        """Replace the rule file (a Prometheus started with ``rules`` only)."""
        tmp = self.rules_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(rules, sort_keys=False))
        os.replace(tmp, self.rules_file)
        if reload:
            request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
            with urllib.request.urlopen(request, timeout=10):
                pass

    def query(self, promql: str) -> Any:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        return http_json(url)

    def firing(self) -> list[dict[str, Any]]:
        data = http_json(f"{self.url}/api/v1/alerts")
        return [a for a in data["data"]["alerts"] if a["state"] == "firing"]

    def wait_scraped(self, *addresses: str, timeout: float = 15.0) -> None:
        """Until every address is an `up` target with samples (scrapes happen every second)."""

        def all_up() -> bool:
            data = http_json(f"{self.url}/api/v1/targets?state=active")
            up = {t["labels"].get("instance") for t in data["data"]["activeTargets"] if t["health"] == "up"}
            return all(a in up for a in addresses)

        wait_for(all_up, timeout, 0.2, f"Prometheus to scrape {addresses}")
