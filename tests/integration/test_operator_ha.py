"""High availability: two peered rankops operator processes against the sandbox.

Only the leader acts; after a SIGKILL of the leader the standby takes over within the
peering lifetime plus a margin, and no step, promotion or history entry happens twice.
The rollout needs no metrics (steps without analysis, held by pauses), so what is timed is
the handover alone. The processes are ``rankops operator run --all-namespaces --peering
rankops``, as the chart runs them with ``highAvailability.enabled``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chart_support import render
from tests.integration.conftest import (
    NAMESPACE,
    event_reasons,
    ranking_model,
    start_rollout,
    wait_healthy_at,
    wait_status,
)
from tests.integration.harness import free_port, stop_process, wait_for
from tests.integration.peering_support import is_active

ROOT = Path(__file__).resolve().parents[2]
LIFETIME = 5
TAKEOVER_BOUND = LIFETIME + 10.0


HA_VALUES = {"highAvailability": {"enabled": True, "lifetimeSeconds": LIFETIME}, "replicaCount": 2}
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _start(api: Any, name: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """One replica as the chart runs it with highAvailability on (its own health port each)."""
    log = tmp_path / f"{name}.log"
    deployment = next(o for o in render(HA_VALUES) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--peering=rankops" in container["args"] and "--all-namespaces" in container["args"]
    port = free_port()
    args = [sys.executable, "-m", "rankops.cli"]
    args += [a.replace("http://0.0.0.0:8080/", f"http://127.0.0.1:{port}/") for a in container["args"]]
    env = {
        **os.environ,
        **{e["name"]: e["value"] for e in container["env"] if "value" in e},  # RANKOPS_PEERING_LIFETIME
        "RANKOPS_APISERVER_URL": api.url,  # in a cluster: the service account
        "RANKOPS_PROMETHEUS_URL": "http://127.0.0.1:9",
        "RANKOPS_WATCH_TIMEOUT": "10",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(tmp_path),
    }
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, log


def _active(procs: dict[str, tuple[Any, Path]]) -> list[str]:
    return [name for name, (_, log) in procs.items() if is_active(log)]


def test_leader_handover_without_duplicated_steps(api: Any, model_name: str, tmp_path: Path) -> None:
    ha = render(HA_VALUES)
    for obj in ha:
        if obj["apiVersion"].startswith(("kopf.dev/", "apiextensions.k8s.io/")):
            api.create(obj)  # the chart's peering CRD, then its ClusterKopfPeering
    first, first_log = _start(api, "first", tmp_path)
    second, second_log = _start(api, "second", tmp_path)
    procs = {"first": (first, first_log), "second": (second, second_log)}
    try:
        # Peering settles first: kopf starts each operator paused and resumes only the leader.
        wait_for(lambda: len(_active(procs)) == 1, 60, 0.2, "exactly one operator active")
        time.sleep(2.0)  # and it stays so
        active = _active(procs)
        assert len(active) == 1, f"exactly one leader expected, active: {active}"
        (leader_name,) = active
        (standby_name,) = set(procs) - {leader_name}
        steps = [{"weight": 50, "pause": "8s"}, {"weight": 100}]
        model = ranking_model(model_name, steps=steps)
        del model["spec"]["rollout"]["analysis"]
        api.create(model)
        wait_status(api, model_name, lambda s: s.get("phase") == "Healthy", 60, "first deploy")

        start_rollout(api, model_name, "1.1.0")
        wait_status(api, model_name, lambda s: s.get("canaryWeight") == 50, 30, "step 1 at weight 50")
        leader = procs[leader_name][0]
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        killed = time.monotonic()
        standby_log = procs[standby_name][1]
        seen = len(standby_log.read_text(errors="replace"))  # only a resume after the kill counts
        wait_for(
            lambda: "Resuming operations" in standby_log.read_text(errors="replace")[seen:],
            TAKEOVER_BOUND + 20,
            0.1,
            "takeover",
        )
        takeover = time.monotonic() - killed
        print(f"takeover: standby {standby_name} resumed {takeover:.1f}s after SIGKILL of {leader_name}")
        assert takeover <= TAKEOVER_BOUND, f"takeover took {takeover:.1f}s (bound {TAKEOVER_BOUND}s)"
        status = wait_healthy_at(
            api, model_name, "1.1.0", 8 + TAKEOVER_BOUND + 20, "promotion by the standby"
        )
        took = time.monotonic() - killed
        print(
            f"leader {leader_name} killed; standby {standby_name} promoted {took:.1f}s later (step pause 8s)"
        )
        assert took <= 8 + TAKEOVER_BOUND
        reasons = event_reasons(api, model_name)
        assert reasons.count("Promoted") == 1 and reasons.count("StepAdvanced") == 1, reasons
        assert [h["version"] for h in status["history"] if h["outcome"] == "Promoted"] == ["1.1.0"]
        assert status["canaryRevision"] == 1
    finally:
        for name, (proc, log) in procs.items():
            stop_process(proc, 15)
            print(f"===== {name} =====\n" + log.read_text(errors="replace")[-4000:])
    assert api.get_object("rankingmodels", model_name, NAMESPACE) is not None
