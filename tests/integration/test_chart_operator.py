"""The operator as the chart runs it: the Deployment's args and env, the probes' endpoint.

The chart's container arguments and environment (default values) run ``rankops`` (the image's
entrypoint) as a process against the sandbox API server, cluster-wide as installed. The
probes' URL answers 200 once the operator is up, and it deploys a RankingModel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.chart_support import render
from tests.integration.conftest import deploy_healthy
from tests.integration.harness import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_operator_runs_with_the_charts_arguments_and_answers_its_probes(
    api: Any, model_name: str, tmp_path: Path
) -> None:
    deployment = next(o for o in render() if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = free_port()
    args = [a.replace("http://0.0.0.0:8080/", f"http://127.0.0.1:{port}/") for a in container["args"]]
    assert f"--liveness=http://127.0.0.1:{port}/healthz" in args and "--all-namespaces" in args
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env.update(
        RANKOPS_APISERVER_URL=api.url,  # in a cluster: the service account
        RANKOPS_PROMETHEUS_URL="http://127.0.0.1:9",
        RANKOPS_WATCH_TIMEOUT="10",
        TMPDIR=str(tmp_path),
    )
    probe = container["readinessProbe"]["httpGet"]
    log = (tmp_path / "operator.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rankops.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, "the operator exited"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe['path']}", timeout=2) as response:
                return response.status == 200

        wait_for(healthy, 30, 0.2, "the operator's health endpoint")
        deploy_healthy(api, model_name, timeout=30)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        print((tmp_path / "operator.log").read_text(errors="replace")[-5000:])
