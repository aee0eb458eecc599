"""`rankops serve` as a real process on loopback: readiness, ranking, feedback, /metrics.

The Prometheus test has a real Prometheus scrape the service and checks what the operator
will query: ``increase()`` of the NDCG summary and its squares counter, per identity.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import service_support
from tests.integration.harness import Prometheus, free_port, http_json, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]
MODEL, TRACK = "search-it", "canary"


def identity() -> dict[str, str]:
    """The labels every series must carry (the version is the artifact manifest's)."""
    return {"model": MODEL, "version": service_support.artifact_version(), "track": TRACK}


# Labels a series may carry besides the identity, by metric family.
EXTRA_LABELS = {
    "rankops_requests": {"code"},
    "rankops_feedback": {"code"},
    "rankops_request_duration_seconds": {"le"},
    "rankops_cache_requests": {"result"},
    "rankops_drift_psi": {"feature"},
    "rankops_drift_pvalue": {"feature", "test"},
    "rankops_model_info": {"sha256"},
    "rankops_feedback_log_records": {"kind"},
}


class Server:
    def __init__(self, model: Path, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("RANKOPS_")}
        full_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rankops.cli", "serve", "--model", str(model), "--port", str(self.port)],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_listening(self) -> None:
        def listening() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                return self.get("/healthz")[0] == 200
            except OSError:
                return False

        wait_for(listening, 60, 0.1, "rankops serve to listen")

    def wait_ready(self) -> None:
        self.wait_listening()
        wait_for(lambda: self.get("/readyz")[0] == 200, 60, 0.1, "/readyz 200")

    def metrics(self) -> dict[str, list[Any]]:
        status, body = self.get("/metrics")
        assert status == 200
        out: dict[str, list[Any]] = {}
        for family in text_string_to_metric_families(body.decode()):
            out.setdefault(family.name, []).extend(family.samples)
        return out

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        stop_process(self.proc, 15)
        self._log.close()
        return int(self.proc.returncode)


@contextlib.contextmanager
def serving(model: Path, tmp: Path, **env: str) -> Iterator[Server]:
    base = {"RANKOPS_MODEL": MODEL, "RANKOPS_TRACK": TRACK}
    server = Server(model, {**base, **env}, tmp / f"serve-{time.monotonic_ns()}.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def model() -> Path:
    return service_support.artifact()


def test_metrics_exist_from_zero_with_the_identity_labels(model: Path, tmp_path: Path) -> None:
    with serving(model, tmp_path, RANKOPS_DRIFT_INTERVAL_S="0.2", RANKOPS_DRIFT_MIN_SAMPLES="3") as server:
        server.wait_ready()
        families = server.metrics()
        # before any ranking request: every contract series is there, at zero
        for name in (
            "rankops_requests",
            "rankops_ndcg_at_3",
            "rankops_ndcg_at_3_squares_sum",
            "rankops_cache_requests",
        ):
            assert name in families, name
            assert all(s.value == 0 for s in families[name] if not s.name.endswith("_created")), name
        # every rankops series carries exactly the identity plus its own labels
        wanted = identity()
        for name, samples in families.items():
            if not name.startswith("rankops_"):
                continue
            for s in samples:
                assert {k: s.labels[k] for k in wanted} == wanted, (name, s.labels)
                extra = EXTRA_LABELS.get(name.removesuffix("_created"), set())
                assert set(s.labels) - set(wanted) <= extra, (name, s.labels)
        for q in service_support.dataset_queries()[:10]:
            status = http_json(f"{server.url}/v1/rank", {"query": q, "k": 3})
            assert len(status["results"]) == 3
        wait_for(
            lambda: all(s.value == s.value for s in server.metrics()["rankops_drift_psi"]),  # not NaN
            20,
            0.2,
            "drift gauges",
        )
        info = server.metrics()["rankops_model_info"]
        assert len(info) == 1 and info[0].value == 1
        assert info[0].labels["sha256"] == http_json(f"{server.url}/v1/model")["sha256"]
        # SIGTERM: graceful shutdown (uvicorn re-raises the signal once it has finished)
        assert server.stop() in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log()


def test_rank_and_feedback_over_http(model: Path, tmp_path: Path) -> None:
    with serving(model, tmp_path, RANKOPS_VERSION="7.0.0") as server:
        server.wait_ready()
        ranked = http_json(f"{server.url}/v1/rank", {"query": "hdb resale prices singapore", "k": 5})
        assert ranked["version"] == "7.0.0" and ranked["routing"]["region"] == "Singapore"
        top = ranked["results"][0]["id"]
        fb = http_json(f"{server.url}/v1/feedback", {"request_id": ranked["request_id"], "clicks": [top]})
        assert fb["ndcg_at_3"] == 1.0
        try:
            http_json(f"{server.url}/v1/feedback", {"request_id": ranked["request_id"], "clicks": [top]})
        except urllib.error.HTTPError as exc:
            assert exc.code == 409
        else:
            raise AssertionError("second feedback accepted")
        families = server.metrics()
        count = [s for s in families["rankops_ndcg_at_3"] if s.name == "rankops_ndcg_at_3_count"]
        assert [s.value for s in count] == [1.0]
        assert {s.labels["version"] for s in count} == {"7.0.0"}


def test_tampered_artifact_keeps_readyz_503(model: Path, tmp_path: Path) -> None:
    bad = service_support.artifact_copy(tmp_path / "model")
    catalog = bad / "catalog.jsonl"
    data = bytearray(catalog.read_bytes())
    data[10] = ord("X") if data[10] != ord("X") else ord("Y")
    catalog.write_bytes(bytes(data))
    with serving(bad, tmp_path) as server:
        server.wait_listening()
        wait_for(lambda: b'"failed"' in server.get("/readyz")[1], 30, 0.1, "/readyz to report the failure")
        time.sleep(1.0)
        status, body = server.get("/readyz")
        assert status == 503
        assert b"catalog.jsonl: sha256 mismatch" in body
        assert server.get("/healthz")[0] == 200  # alive, just never ready
        assert server.proc.poll() is None


@pytest.mark.prometheus
def test_prometheus_sees_increase_of_ndcg_from_the_first_feedback(model: Path, tmp_path: Path) -> None:
    with serving(model, tmp_path) as server:
        server.wait_ready()
        prometheus = Prometheus([server.address])
        try:
            prometheus.wait_scraped(server.address, timeout=20)
            time.sleep(1.5)  # a scrape with everything at zero
            values = [1.0, 0.5, 0.0, 1.0]
            for v in values:
                ranked = http_json(f"{server.url}/v1/rank", {"query": "bus ridership", "k": 3})
                ids = [r["id"] for r in ranked["results"]]
                clicks = {1.0: [ids[0]], 0.0: [], 0.5: None}[v]
                body: dict[str, Any] = {"request_id": ranked["request_id"]}
                if clicks is None:  # grades giving NDCG@3 = 0.5: ideal 2 at the top, served at rank 3
                    body["judgments"] = {ids[2]: 2, ids[0]: 0}
                else:
                    body["clicks"] = clicks
                fb = http_json(f"{server.url}/v1/feedback", body)
                assert fb["ndcg_at_3"] == pytest.approx(v)
            selector = "{" + ",".join(f'{k}="{v}"' for k, v in identity().items()) + "}"

            def scraped_all() -> bool:
                r = prometheus.query(f"rankops_ndcg_at_3_count{selector}")["data"]["result"]
                return bool(r) and float(r[0]["value"][1]) == len(values)

            wait_for(scraped_all, 20, 0.2, "Prometheus to scrape the feedback")

            def instant(expr: str) -> float:
                r = prometheus.query(expr)["data"]["result"]
                assert len(r) == 1, (expr, r)
                return float(r[0]["value"][1])

            mean = sum(values) / len(values)
            mean_sq = sum(v * v for v in values) / len(values)
            # the raw series are exact
            count = f"rankops_ndcg_at_3_count{selector}"
            assert instant(f"rankops_ndcg_at_3_sum{selector} / {count}") == pytest.approx(mean)
            assert instant(f"rankops_ndcg_at_3_squares_sum_total{selector} / {count}") == pytest.approx(
                mean_sq
            )
            # increase() sees the first increments (the series existed at zero before them); it
            # extrapolates each series to the window edges, so its ratios are close, not exact
            n = instant(f"increase({count}[1m])")
            assert n >= len(values) * 0.9
            assert instant(f"increase(rankops_ndcg_at_3_sum{selector}[1m])") / n == pytest.approx(
                mean, rel=0.02
            )
            squares = instant(f"increase(rankops_ndcg_at_3_squares_sum_total{selector}[1m])")
            assert squares / n == pytest.approx(mean_sq, rel=0.02)
            golden = prometheus.query(f"rankops_golden_ndcg_at_3{selector}")["data"]["result"]
            assert 0.0 <= float(golden[0]["value"][1]) <= 1.0
        finally:
            prometheus.stop()
