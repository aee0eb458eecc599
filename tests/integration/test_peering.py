"""kopf peering on the sandbox API server with the chart's peering CRD and object.

Groundwork for the operator's high availability (docs/install.md): two kopf operators of
different priorities (``peering_operator.py``, a test double standing for rankops, which
does not run peered yet) share the chart's ClusterKopfPeering. Only the higher-priority one
acts; after it is SIGKILLed the other takes over within the peering lifetime plus a margin,
and does not act again on what the first one handled.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chart_support import render
from tests.integration.harness import crd_manifests, stop_process, wait_for
from tests.integration.peering_support import is_active
from tests.integration.request_log import record_operator_requests

HERE = Path(__file__).resolve().parent
LIFETIME = 5  # seconds: the takeover bound is about this after a SIGKILL
TAKEOVER_BOUND = LIFETIME + 10.0  # plus a keepalive round and the watch under load


def peering_objects() -> list[dict[str, Any]]:
    objects = render({"highAvailability": {"enabled": True}, "replicaCount": 2})
    return [o for o in objects if o["apiVersion"].startswith(("kopf.dev/", "apiextensions.k8s.io/"))]


def start(api: Any, identity: str, priority: int, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(HERE / "peering_operator.py"), "--apiserver", api.url]
    args += ["--peering", "rankops", "--priority", str(priority), "--identity", identity]
    args += ["--lifetime", str(LIFETIME)]
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def configmap(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"rankops.test/peering": "yes"}},
    }


def acted_by(api: Any, name: str) -> str | None:
    obj = api.get_object("configmaps", name, "default") or {}
    return (obj.get("metadata", {}).get("annotations") or {}).get("rankops.test/acted-by")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_only_the_leader_acts_and_the_standby_takes_over(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from rankops.sandbox.apiserver import SandboxAPIServer

    crds = [o for o in peering_objects() if o["kind"] == "CustomResourceDefinition"]
    (peering,) = [o for o in peering_objects() if o["kind"] == "ClusterKopfPeering"]
    with SandboxAPIServer.in_thread(crds=crd_manifests() + crds) as api:
        api.create(peering)
        leader = start(api, "leader", 200, tmp_path / "leader.log")
        standby = start(api, "standby", 100, tmp_path / "standby.log")
        try:
            wait_for(lambda: len(_status(api)) >= 2, 30, 0.2, "both peers in the peering record")
            leader_log, standby_log = tmp_path / "leader.log", tmp_path / "standby.log"
            wait_for(
                lambda: is_active(leader_log) and not is_active(standby_log),
                30,
                0.2,
                "the leader active and the standby paused",
            )
            api.create(configmap("first"))
            wait_for(lambda: acted_by(api, "first"), 30, 0.1, "the leader to act")
            assert acted_by(api, "first") == "leader"

            leader.send_signal(signal.SIGKILL)
            leader.wait(10)
            killed = time.monotonic()
            api.create(configmap("second"))
            wait_for(lambda: acted_by(api, "second"), TAKEOVER_BOUND + 20, 0.1, "the standby to take over")
            takeover = time.monotonic() - killed
            print(f"takeover after SIGKILL of the leader: {takeover:.1f}s (lifetime {LIFETIME}s)")
            assert acted_by(api, "second") == "standby"
            assert takeover <= TAKEOVER_BOUND
            assert is_active(standby_log)
            time.sleep(2.0)  # anything the standby would redo, it would redo at once
            assert acted_by(api, "first") == "leader", "the standby handled again what the leader had"
        finally:
            for proc in (leader, standby):
                stop_process(proc, 15)
            for name in ("leader", "standby"):
                print(
                    f"===== {name} =====\n" + (tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]
                )
        # Only what kopf's peering does counts toward the chart's RBAC (the double's
        # ConfigMap handler is not the operator's).
        record_operator_requests(api, request.node.nodeid, resources={"clusterkopfpeerings"})


def _status(api: Any) -> dict[str, Any]:
    obj = api.get_object("clusterkopfpeerings", "rankops") or {}
    return dict(obj.get("status") or {})
