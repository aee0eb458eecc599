"""Integration harness: the real operator (kopf) against the sandbox API server emulator, and a
real Prometheus scraping exporter processes on loopback.

Fixtures
- ``metrics_stack`` (session): two ``ndcg_exporter.py`` processes (tracks stable and canary) and
  a Prometheus scraping them every second. Prometheus applies target changes only every 5 s,
  so the targets are fixed and each test relabels the exporters instead (``stack.use(...)``
  sets model, versions and distributions). Skipped when ``/usr/bin/prometheus`` is absent.
- ``stack``: the session stack, reset for this test (fresh distributions, a fresh model name).
- ``api``: a fresh sandbox API server (thread) with the CRDs from ``crds/``, simulating
  Deployment readiness.
- ``operator``: a factory starting the operator; ``operator()`` runs it in-process with
  ``kopf.testing.KopfRunner``; ``operator(process=True)`` runs ``rankops operator run`` as a
  subprocess (which a test can SIGKILL). Both are stopped at teardown and their logs printed
  (pytest shows them for failing tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    PROMETHEUS_BIN,
    Exporter,
    Prometheus,
    crd_manifests,
    stop_process,
    wait_for,
)
from tests.integration.manifests import ndcg_objective, quality_slo_manifest
from tests.integration.request_log import record_operator_requests

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
NAMESPACE = "default"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.access(PROMETHEUS_BIN, os.X_OK):
        return
    skip = pytest.mark.skip(
        reason=f"prometheus binary not found at {PROMETHEUS_BIN} "
        "(Debian package `prometheus`, installed by `make prometheus`)"
    )
    for item in items:
        if item.get_closest_marker("prometheus"):
            item.add_marker(skip)


class MetricsStack:
    """Prometheus + one exporter per track; ``use()`` points the exporters at one model."""

    def __init__(self) -> None:
        self.stable = Exporter("unset", "0.0.0", "stable", mean=0.8, sd=0.05, rate=50, seed=1)
        self.canary = Exporter("unset", "0.0.0", "canary", mean=0.8, sd=0.05, rate=50, seed=2)
        try:
            self.prometheus = Prometheus([self.stable.address, self.canary.address])
            self.prometheus.wait_scraped(self.stable.address, self.canary.address, timeout=20)
        except BaseException:
            self.stable.stop()
            self.canary.stop()
            raise

    @property
    def url(self) -> str:
        return self.prometheus.url

    def use(
        self,
        model: str,
        stable_version: str,
        canary_version: str,
        *,
        stable_mean: float = 0.8,
        canary_mean: float = 0.8,
        sd: float = 0.05,
        rate: float = 50.0,
    ) -> None:
        self.stable.set(model=model, version=stable_version, mean=stable_mean, sd=sd, rate=rate)
        self.canary.set(model=model, version=canary_version, mean=canary_mean, sd=sd, rate=rate)

    def stop(self) -> None:
        self.prometheus.stop()
        self.stable.stop()
        self.canary.stop()


@pytest.fixture(scope="session")
def metrics_stack() -> Iterator[MetricsStack]:
    if not os.access(PROMETHEUS_BIN, os.X_OK):
        pytest.skip(f"prometheus binary not found at {PROMETHEUS_BIN}")
    stack = MetricsStack()
    try:
        yield stack
    finally:
        stack.stop()


_counter = iter(range(1, 10_000))


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    base = request.node.name.removeprefix("test_").replace("_", "-")[:30].strip("-")
    return f"{base}-{next(_counter)}"


@pytest.fixture
def stack(metrics_stack: MetricsStack, model_name: str) -> MetricsStack:
    metrics_stack.use(model_name, "1.0.0", "1.1.0")
    return metrics_stack


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[Any]:
    from rankops.sandbox.apiserver import SandboxAPIServer

    with SandboxAPIServer.in_thread(
        crds=crd_manifests(), simulate_workloads=True, workload_delay=0.1
    ) as server:
        yield server
        record_operator_requests(server, request.node.nodeid)  # opt-in: RANKOPS_REQUEST_LOG


def writes(api: Any) -> list[str]:
    """Every write request the emulator has received, as ``METHOD path``."""
    out = []
    for request in list(api):
        method = str(getattr(request.method, "value", request.method)).upper()
        if method not in ("GET", "HEAD", "OPTIONS"):
            out.append(f"{method} {request.url.path}")
    return out


class OperatorHandle:
    def __init__(self, env: dict[str, str], process: bool, verbose: bool) -> None:
        self.process = process
        self.log = ""
        self._runner: Any = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._logfile = tempfile.NamedTemporaryFile(prefix="operator-", suffix=".log", delete=False)  # noqa: SIM115
        if process:
            args = [sys.executable, "-m", "rankops.cli", "operator", "run", "-n", NAMESPACE]
            if verbose:
                args.append("--verbose")
            self._proc = subprocess.Popen(
                args, env={**os.environ, **env}, stdout=self._logfile, stderr=subprocess.STDOUT, cwd=ROOT
            )
        else:
            import kopf
            from kopf.testing import KopfRunner

            from rankops.operator.handlers import registry

            self._default_registry = kopf.get_default_registry()  # kopf's CLI replaces it

            self._saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            args = ["run", "--standalone", "-n", NAMESPACE]
            if verbose:
                args.append("--verbose")
            # The operator's own registry: kopf's default one is process-wide, and other tests
            # (or kopf's CLI, which installs the registry it is given as the default) may have
            # left handlers there that would run in this operator too.
            self._runner = KopfRunner(args, registry=registry, timeout=30)
            self._runner.__enter__()

    def stop(self, kill: bool = False) -> str:
        if self._proc is not None:
            stop_process(self._proc, 15, signal.SIGKILL if kill else signal.SIGTERM)
            self._logfile.flush()
            self.log = Path(self._logfile.name).read_text(errors="replace")
            self._proc = None
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                runner.__exit__(None, None, None)
            finally:
                import kopf

                kopf.set_default_registry(self._default_registry)
                with contextlib.suppress(Exception):
                    self.log = runner.output
                for key, value in self._saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        return self.log


@pytest.fixture
def operator(api: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., OperatorHandle]]:
    handles: list[OperatorHandle] = []

    def start(
        prometheus_url: str | None = None,
        *,
        process: bool = False,
        verbose: bool = False,
        resync: float = 30.0,
        **extra_env: str,
    ) -> OperatorHandle:
        stack: MetricsStack | None = (
            request.getfixturevalue("metrics_stack") if prometheus_url is None else None
        )
        env = {
            "RANKOPS_APISERVER_URL": api.url,
            "RANKOPS_PROMETHEUS_URL": prometheus_url or (stack.url if stack else ""),
            "RANKOPS_PROMETHEUS_TIMEOUT": "2",
            "RANKOPS_WATCH_TIMEOUT": "10",
            "RANKOPS_RESYNC_INTERVAL": str(resync),
            **extra_env,
        }
        handle = OperatorHandle(env, process, verbose)
        handles.append(handle)
        return handle

    yield start
    for i, handle in enumerate(handles):
        log = handle.stop()
        print(f"===== operator #{i + 1} log ({'process' if handle.process else 'KopfRunner'}) =====")
        print(log[-30_000:])


# --------------------------------------------------------------------------- manifests and polling


def ranking_model(
    name: str,
    version: str = "1.0.0",
    *,
    steps: list[dict[str, Any]] | None = None,
    slo: str = "ndcg",
    interval: str = "1s",
    failure_limit: int = 2,
    inconclusive_limit: int = 10,
    replicas: int = 2,
    traffic_routing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"version": version, "uri": f"file:///models/{name}/{version}"},
            "serving": {"image": "rankops/serving:test", "replicas": replicas},
            "rollout": {
                "steps": steps or [{"weight": 25}, {"weight": 50}, {"weight": 100}],
                "analysis": {
                    "sloRef": {"name": slo},
                    "interval": interval,
                    "failureLimit": failure_limit,
                    "inconclusiveLimit": inconclusive_limit,
                },
                "progressDeadline": "60s",
            },
        },
    }
    if traffic_routing is not None:
        obj["spec"]["rollout"]["trafficRouting"] = traffic_routing
    return obj


def quality_slo(
    name: str = "ndcg",
    *,
    window: str = "10s",
    min_samples: int = 30,
    max_degradation: float = 0.02,
    alpha: float = 0.05,
) -> dict[str, Any]:
    comparison = {"maxDegradation": max_degradation, "alpha": alpha, "minSamples": min_samples}
    return quality_slo_manifest(name, [ndcg_objective(window, comparison=comparison)])


def get_model(api: Any, name: str) -> dict[str, Any]:
    obj = api.get_object("rankingmodels", name, NAMESPACE)
    assert obj is not None, f"RankingModel {name} not found"
    return dict(obj)


def status_of(api: Any, name: str) -> dict[str, Any]:
    return dict(get_model(api, name).get("status") or {})


def wait_status(
    api: Any,
    name: str,
    predicate: Callable[[dict[str, Any]], Any],
    timeout: float = 30.0,
    what: str = "status",
) -> dict[str, Any]:
    """Poll the emulator until ``predicate(status)`` holds; the last status is in the error."""
    last: dict[str, Any] = {}

    def check() -> Any:
        nonlocal last
        last = status_of(api, name)
        return predicate(last)

    try:
        wait_for(check, timeout, 0.1, what)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last status: {last}") from None
    return last


def events_of(api: Any, name: str) -> list[dict[str, Any]]:
    events = [
        e
        for e in api.list_objects("events", NAMESPACE)
        if (e.get("involvedObject") or {}).get("name") == name
    ]
    return sorted(
        events,
        key=lambda e: (
            e.get("metadata", {}).get("creationTimestamp") or "",
            int(e.get("metadata", {}).get("resourceVersion") or 0),
        ),
    )


def event_reasons(api: Any, name: str) -> list[str]:
    return [e.get("reason", "") for e in events_of(api, name)]


def children_of(api: Any, uid: str) -> list[str]:
    out = []
    for resource in ("deployments", "services"):
        for obj in api.list_objects(resource, NAMESPACE):
            refs = obj.get("metadata", {}).get("ownerReferences") or []
            if any(ref.get("uid") == uid for ref in refs):
                out.append(f"{resource}/{obj['metadata']['name']}")
    return out


def object_history(api: Any, collection: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every stored version of one object so far, as (event type, object), oldest first.

    Replays the emulator's watch log (a watch from resourceVersion 1, which the emulator
    serves while its log holds the events: 10,000 by default, plenty for one test), so
    short-lived states that polling could miss are all there. ``collection`` is the API path
    of the collection, e.g. ``/apis/apps/v1/namespaces/default/deployments``.
    """
    import json
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode(
        {
            "watch": "true",
            "resourceVersion": "1",
            "timeoutSeconds": "1",
            "fieldSelector": f"metadata.name={name}",
        }
    )
    out: list[tuple[str, dict[str, Any]]] = []
    with urllib.request.urlopen(f"{api.url}{collection}?{query}", timeout=30) as response:
        for line in response:
            if line.strip():
                event = json.loads(line)
                if event["type"] == "ERROR":
                    raise AssertionError(f"watch replay of {collection}/{name} failed: {event['object']}")
                if event["type"] != "BOOKMARK":
                    out.append((event["type"], event["object"]))
    return out


def start_rollout(api: Any, name: str, version: str) -> None:
    """Change spec.model.version (as `kubectl apply` / a GitOps commit would)."""
    obj = get_model(api, name)
    obj["spec"]["model"]["version"] = version
    obj["spec"]["model"]["uri"] = f"file:///models/{name}/{version}"
    api.apply_object(obj)


def wait_healthy_at(
    api: Any, name: str, version: str, timeout: float = 45.0, what: str = ""
) -> dict[str, Any]:
    """Until ``version`` is the stable one and the model Healthy (deployed, or promoted)."""
    return wait_status(
        api,
        name,
        lambda s: s.get("phase") == "Healthy" and s.get("stableVersion") == version,
        timeout,
        what or f"{name} Healthy at {version}",
    )


def wait_rolled_back(api: Any, name: str, timeout: float = 30.0, what: str = "rollback") -> dict[str, Any]:
    return wait_status(api, name, lambda s: s.get("phase") == "RolledBack", timeout, what)


def deploy_healthy(
    api: Any, name: str, version: str = "1.0.0", timeout: float = 20.0, **kwargs: Any
) -> dict[str, Any]:
    api.create(ranking_model(name, version, **kwargs))
    return wait_healthy_at(api, name, version, timeout)


def wait_events(api: Any, name: str, *reasons: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Events are posted asynchronously (kopf's posting queue): wait until each reason is there."""
    found: list[dict[str, Any]] = []

    def check() -> bool:
        nonlocal found
        found = events_of(api, name)
        present = {e.get("reason") for e in found}
        return all(r in present for r in reasons)

    try:
        wait_for(check, timeout, 0.05, f"events {reasons}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; events: {[e.get('reason') for e in found]}") from None
    return found
