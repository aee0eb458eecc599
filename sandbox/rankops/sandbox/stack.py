"""The whole sandbox on one machine: API server, process runtime, entry point, Prometheus, operator.

    with Sandbox(workdir) as sb:
        sb.apply(manifest)              # as kubectl apply would
        sb.entry.url                    # http://127.0.0.1:PORT/<route or service>/v1/rank
        sb.prometheus.url, sb.alertmanager.url, sb.kubeconfig
        sb.sync_slo_rules()             # each QualitySLO's alert rules into Prometheus

Start order: the API server (a thread with its own loop, CRDs from ``crds/``), the runtime
and the entry point in that loop, Alertmanager (delivering to the operator's receiver, bearer
token from a file), Prometheus (file discovery of the pods, alerts to Alertmanager), then the
operator as a process (``rankops operator run``, the same command the operator image runs),
pointed at the API server and Prometheus and serving the receiver (``--alerts-port``,
``--alerts-token-file``). ``close()`` stops everything in the reverse order and waits for
every process to be gone, also when start-up failed half-way. Alerting is on where the
Debian ``prometheus-alertmanager`` is installed (``alerting=None``) or when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from rankops.sandbox.alerting import Alertmanager, alertmanager_binary, slo_rules
from rankops.sandbox.apiserver import SandboxAPIServer
from rankops.sandbox.entrypoint import EntryPoint
from rankops.sandbox.processes import ManagedProcess, free_port
from rankops.sandbox.prometheus import Prometheus
from rankops.sandbox.runner import ThreadedServer
from rankops.sandbox.runtime import ProcessRuntime

__all__ = ["Sandbox", "default_crds"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def default_crds() -> Path:
    """``crds/`` of the source tree (or ``$RANKOPS_CRDS``)."""
    configured = os.environ.get("RANKOPS_CRDS")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "crds"


class Sandbox:
    def __init__(
        self,
        workdir: Path,
        *,
        namespace: str = "default",
        prometheus: bool = True,
        operator: bool = True,
        scrape_interval: float = 1.0,
        operator_env: Mapping[str, str] | None = None,
        entry_port: int = 0,
        api_port: int = 0,
        image_root: Path | None = None,
        alerting: bool | None = None,
    ) -> None:
        self.image_root = image_root
        self.want_alerting = (
            prometheus and alertmanager_binary() is not None if alerting is None else alerting and prometheus
        )
        self.workdir = workdir.resolve()
        self.namespace = namespace
        self.want_prometheus, self.want_operator = prometheus, operator
        self.scrape_interval = scrape_interval
        self.operator_env = dict(operator_env or {})
        self.entry_port, self.api_port = entry_port, api_port
        self._server: ThreadedServer | None = None
        self.api: SandboxAPIServer | None = None
        self.runtime: ProcessRuntime | None = None
        self.entry = EntryPoint(namespace, port=entry_port)
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None
        self.alerts_port = 0  # the operator's Alertmanager receiver
        self.alerts_token = self.workdir / "alerts-token"
        self._rules_seen: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.operator: ManagedProcess | None = None
        self.operator_health = ""
        self.kubeconfig = self.workdir / "kubeconfig"

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _in_loop(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        assert self.api is not None and self.api._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.api._loop).result(timeout)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._server = SandboxAPIServer.in_thread(crds=[default_crds()], port=self.api_port or None)
        self.api = self._server.__enter__()
        self.api.write_kubeconfig(self.kubeconfig, namespace=self.namespace)
        if self.namespace != "default":
            self.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})

        async def start_in_loop() -> None:
            assert self.api is not None
            self.runtime = ProcessRuntime(self.api, self.workdir / "runtime", image_root=self.image_root)
            await self.entry.start()
            self.runtime.listeners.append(self.entry.update)
            self.runtime.start()

        self._in_loop(start_in_loop())
        if self.want_alerting:
            self.alerts_token.write_text(secrets.token_urlsafe(24))
            self.alerts_token.chmod(0o600)
            self.alerts_port = free_port()
            receiver = f"http://127.0.0.1:{self.alerts_port}/v1/alerts"
            self.alertmanager = Alertmanager(self.workdir / "alertmanager", receiver, self.alerts_token)
            self.alertmanager.wait_ready()
        if self.want_prometheus:
            self.prometheus = Prometheus(
                self.workdir / "prometheus",
                interval=self.scrape_interval,
                alertmanager=self.alertmanager.url if self.alertmanager else None,
            )
            self.prometheus.wait_ready()
            assert self.runtime is not None
            self.runtime.listeners.append(self.prometheus.update)
        if self.want_operator:
            self.start_operator()

    def start_operator(self) -> None:
        assert self.api is not None
        health_port = free_port()
        self.operator_health = f"http://127.0.0.1:{health_port}/healthz"
        argv = [sys.executable, "-m", "rankops.cli", "operator", "run", "-n", self.namespace]
        argv += ["--apiserver", self.api.url, "--liveness", self.operator_health]
        argv += ["--watch-timeout", "30", "--resync-interval", "5"]
        if self.prometheus is not None:
            argv += ["--prometheus", self.prometheus.url]
        if self.alertmanager is not None:
            argv += ["--alerts-port", str(self.alerts_port), "--alerts-token-file", str(self.alerts_token)]
        # RANKOPS_SANDBOX_DIR marks the process as this sandbox's (tests look for leftovers by it).
        env = {
            **os.environ,
            "RANKOPS_PROMETHEUS_TIMEOUT": "2",
            "RANKOPS_SANDBOX_DIR": str(self.workdir),
            "RANKOPS_ALERTS_HOST": "127.0.0.1",  # the receiver on loopback only: Alertmanager is here
            **self.operator_env,
        }
        self.operator = ManagedProcess(argv, env=env, log_path=self.workdir / "operator.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.operator.poll() is not None:
                raise RuntimeError(f"the operator exited at start: {self.operator.tail()}")
            try:
                with urllib.request.urlopen(self.operator_health, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the operator was not live within 60s: {self.operator.tail()}")

    def close(self) -> None:
        """Stop everything this sandbox started (idempotent)."""
        if self.operator is not None:
            self.operator.stop(grace=10)
            self.operator = None
        if self.api is not None and self.api._loop is not None and not self.api._loop.is_closed():

            async def stop_in_loop() -> None:
                if self.runtime is not None:
                    await self.runtime.close()
                await self.entry.close()

            with contextlib.suppress(Exception):
                self._in_loop(stop_in_loop(), timeout=60)
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
        if self.alertmanager is not None:
            self.alertmanager.stop()
            self.alertmanager = None
        if self._server is not None:
            self._server.__exit__(None, None, None)
            self._server = None

    # -- using it -------------------------------------------------------------------------------

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create the object, or replace its spec (as ``kubectl apply`` of a whole manifest)."""
        assert self.api is not None
        meta = manifest.get("metadata") or {}
        resource = str(manifest["kind"]).lower() + "s"
        current = self.api.get_object(resource, meta["name"], meta.get("namespace") or self.namespace)
        if current is None:
            return self.api.create(dict(manifest))
        body = dict(current)
        for key, value in manifest.items():
            if key not in ("metadata", "status", "apiVersion", "kind"):
                body[key] = value
        return self.api.apply_object(body)

    def pids(self) -> list[int]:
        """Every process this sandbox runs now."""
        procs = [
            p
            for p in (
                self.operator,
                self.prometheus.process if self.prometheus else None,
                self.alertmanager.process if self.alertmanager else None,
            )
            if p
        ]
        if self.runtime is not None:
            procs += self.runtime.processes()
        return [p.pid for p in procs if p.running]

    def pod_log(self, namespace: str, pod: str) -> str:
        """The pod's (main container's) output, as ``kubectl logs`` shows it ("" when none)."""
        if self.runtime is None:
            return ""
        logs = sorted((self.workdir / "runtime" / "pods").glob(f"{namespace}_{pod}_*.log"))
        main = [p for p in logs if ".init-" not in p.name]
        return main[-1].read_text(errors="replace") if main else ""

    def sync_slo_rules(self) -> list[str]:
        """Load the alert rules of every QualitySLO whose spec or models changed since the last
        call (``rankops slo rules``, as a CI job or a config reloader would); their names."""
        if self.api is None or self.prometheus is None:
            return []
        models = self.api.list_objects("rankingmodels", self.namespace)
        loaded = []
        for slo in self.api.list_objects("qualityslos", self.namespace):
            name = str(slo["metadata"]["name"])
            using = tuple(sorted(str(m["metadata"]["name"]) for m in models if _slo_ref(m) == name))
            key = (int(slo["metadata"].get("generation", 1)), using)
            if self._rules_seen.get(name) == key:
                continue
            text = slo_rules(self.api.url, name, self.namespace, using)
            self.prometheus.load_rules(f"slo-{name}", text)
            self._rules_seen[name] = key
            loaded.append(name)
        return loaded


def _slo_ref(model: Mapping[str, Any]) -> str | None:
    analysis = ((model.get("spec") or {}).get("rollout") or {}).get("analysis") or {}
    ref = analysis.get("sloRef") or {}
    return str(ref.get("name")) if isinstance(ref, Mapping) and ref.get("name") else None
