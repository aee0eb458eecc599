"""The sandbox runtime's controllers on the emulator's object store, without running processes.

Pod readiness is written by the test (standing in for the kubelet), so each step of a rolling
update can be checked: never more than one pod over the desired count, never fewer ready
pods than desired once they were ready, old pods removed only when a new one is ready.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from rankops.sandbox.apiserver import SandboxAPIServer
from rankops.sandbox.containers import ContainerError, launch_spec
from rankops.sandbox.endpoints import EndpointSliceController
from rankops.sandbox.entrypoint import EntryPoint, RoutingTable
from rankops.sandbox.jobs import JobController
from rankops.sandbox.objects import Snapshot, pod_ready
from rankops.sandbox.versions import corrupt_labels
from rankops.sandbox.workloads import DeploymentController

NS = "default"


@pytest.fixture
def api() -> SandboxAPIServer:
    return SandboxAPIServer()  # not started: its Cluster is used directly, synchronously


def _deployment(version: str, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "m", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "m"}},
            "template": {
                "metadata": {"labels": {"app": "m", "version": version}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "x/serving:1",
                            "env": [{"name": "V", "value": version}],
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }


def _pods(api: SandboxAPIServer) -> list[dict[str, Any]]:
    return api.list_objects("pods", NS)


def _set_ready(api: SandboxAPIServer, pod: dict[str, Any], ready: bool = True, ip: str = "") -> None:
    body = copy.deepcopy(pod)
    status = "True" if ready else "False"
    body["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]}
    if ip:
        body["status"]["podIP"] = ip
    api.apply_object(body, status=True)


def _version(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"]["version"])


def test_a_template_change_replaces_pods_one_at_a_time(api: SandboxAPIServer) -> None:
    controller = DeploymentController(api.cluster)
    api.create(_deployment("1"))
    controller.sync(Snapshot(api.cluster))
    assert len(_pods(api)) == 3
    for pod in _pods(api):
        _set_ready(api, pod)
    controller.sync(Snapshot(api.cluster))
    status = api.get_object("deployments", "m", NS)["status"]
    assert (status["readyReplicas"], status["updatedReplicas"]) == (3, 3)

    deployment = api.get_object("deployments", "m", NS)
    deployment["spec"] = _deployment("2")["spec"]
    api.apply_object(deployment)
    seen_new = 0
    for _ in range(20):
        controller.sync(Snapshot(api.cluster))
        pods = _pods(api)
        assert len(pods) <= 4, "more than one pod over the desired count"
        assert sum(pod_ready(p) for p in pods) >= 3, "fewer ready pods than desired during the rollout"
        new = [p for p in pods if _version(p) == "2"]
        assert len([p for p in new if not pod_ready(p)]) <= 1, "more than one new pod starting at once"
        for pod in new:
            if not pod_ready(pod):
                _set_ready(api, pod)
                seen_new += 1
        if all(_version(p) == "2" and pod_ready(p) for p in pods) and len(pods) == 3:
            break
    assert seen_new == 3
    controller.sync(Snapshot(api.cluster))
    status = api.get_object("deployments", "m", NS)["status"]
    assert status["observedGeneration"] == 2
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (3, 3, 3)
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "NewReplicaSetAvailable"
    sets = {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in api.list_objects("replicasets", NS)}
    assert sorted(sets.values()) == [0, 3] and len(sets) == 2


def test_scaling_to_zero_removes_every_pod_and_omits_zero_counts(api: SandboxAPIServer) -> None:
    controller = DeploymentController(api.cluster)
    api.create(_deployment("1", replicas=2))
    controller.sync(Snapshot(api.cluster))
    deployment = api.get_object("deployments", "m", NS)
    deployment["spec"]["replicas"] = 0
    api.apply_object(deployment)
    controller.sync(Snapshot(api.cluster))
    controller.sync(Snapshot(api.cluster))
    assert _pods(api) == []
    status = api.get_object("deployments", "m", NS)["status"]
    assert "replicas" not in status and "readyReplicas" not in status


def test_endpoint_slices_list_ready_pods_at_their_pod_ip_and_port(api: SandboxAPIServer) -> None:
    api.create(_deployment("1", 2))
    DeploymentController(api.cluster).sync(Snapshot(api.cluster))
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "m", "namespace": NS},
            "spec": {"selector": {"app": "m"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }
    )
    first, second = _pods(api)
    _set_ready(api, first, True, ip="127.9.0.2")
    _set_ready(api, second, False, ip="127.9.0.3")
    EndpointSliceController(api.cluster).sync(Snapshot(api.cluster))
    (es,) = api.list_objects("endpointslices", NS)
    assert es["metadata"]["name"] == "m-8080" and es["ports"][0]["port"] == 8080
    ready = {tuple(e["addresses"]): e["conditions"]["ready"] for e in es["endpoints"]}
    assert ready == {("127.9.0.2",): True, ("127.9.0.3",): False}
    table = RoutingTable.from_snapshot(Snapshot(api.cluster), NS)
    assert [e.address for e in table.services["m"]] == ["127.9.0.2:8080"]


def test_the_entry_point_splits_by_route_weight() -> None:
    from rankops.sandbox.entrypoint import Endpoint

    entry = EntryPoint()
    entry.table = RoutingTable(
        services={"m-stable": [Endpoint("s", "127.0.0.1:1")], "m-canary": [Endpoint("c", "127.0.0.1:2")]},
        routes={"m": [("m-stable", 80), ("m-canary", 20)]},
    )
    picks = [entry.choose("m") for _ in range(5000)]
    share = sum(p is not None and p.pod == "c" for p in picks) / len(picks)
    assert 0.17 < share < 0.23
    entry.table.routes["m"] = [("m-stable", 100), ("m-canary", 0)]
    assert {p.pod for p in (entry.choose("m") for _ in range(200)) if p} == {"s"}
    entry.table.services["m-stable"] = []
    assert entry.choose("m") is None  # nothing ready behind the weighted backend: 503


def test_a_job_whose_pod_failed_past_the_backoff_limit_fails(api: SandboxAPIServer) -> None:
    jobs = JobController(api.cluster, backoff_base=0.0)
    api.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "namespace": NS},
            "spec": {"backoffLimit": 0, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
        }
    )
    jobs.sync(Snapshot(api.cluster))
    (pod,) = _pods(api)
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "j"
    pod["status"] = {"phase": "Failed"}
    api.apply_object(pod, status=True)
    jobs.sync(Snapshot(api.cluster))
    status = api.get_object("jobs", "j", NS)["status"]
    assert status["failed"] == 1
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    jobs.sync(Snapshot(api.cluster))
    assert len(_pods(api)) == 1, "a failed Job starts no more pods"


@pytest.mark.parametrize(
    ("code", "reason", "index"),
    [(1, "PodFailurePolicy", 0), (2, "PodFailurePolicy", 1), (3, "BackoffLimitExceeded", None)],
)
def test_pod_failure_policy_rules_name_the_exit_code(
    api: SandboxAPIServer, code: int, reason: str, index: int | None
) -> None:
    jobs = JobController(api.cluster, backoff_base=0.0)
    rules = [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [v]}} for v in (1, 2)]
    api.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "namespace": NS},
            "spec": {
                "backoffLimit": 3,
                "podFailurePolicy": {"rules": rules},
                "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
            },
        }
    )
    jobs.sync(Snapshot(api.cluster))
    (pod,) = _pods(api)
    pod["status"] = {
        "phase": "Failed",
        "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": code}}}],
    }
    api.apply_object(pod, status=True)
    jobs.sync(Snapshot(api.cluster))
    conditions = api.get_object("jobs", "j", NS)["status"].get("conditions") or []
    failed = [c for c in conditions if c["type"] == "Failed"]
    if index is None:  # no rule matches: the back-off limit (3) governs, the Job goes on
        assert failed == []
        return
    (cond,) = failed
    assert cond["reason"] == reason
    assert f"exit code {code} matching FailJob rule at index {index}" in cond["message"]


def _pod(container: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": NS}, "spec": {"containers": [container]}}


def test_the_container_stand_in_maps_images_ports_and_the_image_files(tmp_path: Path) -> None:
    container = {
        "name": "ranking",
        "image": "ghcr.io/rankops/serving:0.1.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "RANKOPS_MODEL_URI", "value": "file:///models/search-ranker/1.0.0"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
    }
    container["env"].append({"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    spec = launch_spec(_pod(container), container, tmp_path, "127.9.0.7", image_root=tmp_path / "image")
    assert spec.argv[-6:] == ["rankops.cli", "serve", "--host", "127.9.0.7", "--port", "8080"]
    assert spec.env["RANKOPS_MODEL_URI"] == f"file://{tmp_path}/image/models/search-ranker/1.0.0"
    assert spec.env["MY_IP"] == "127.9.0.7"
    assert (spec.ip, spec.readiness_path, spec.readiness_port) == ("127.9.0.7", "/readyz", 8080)
    assert spec.env["TMPDIR"] == str(tmp_path)

    job = {"name": "j", "image": "anything", "command": ["rankops", "evaluate"], "args": ["--split", "test"]}
    assert launch_spec(_pod(job), job, tmp_path).argv[-4:] == [
        "rankops.cli",
        "evaluate",
        "--split",
        "test",
    ]
    # An emptyDir is the pod's own directory, shared by its containers; never the host's path.
    chore = {
        "name": "restore",
        "image": "anything",
        "command": ["rankops", "restore", "--to", "/scratch/restore/1.0.0"],
        "args": ["--keep", "/scratchpad/x", "--cfg", "/etc/x", "--to", "/tmp/kept"],
        "env": [{"name": "OUT", "value": "file:///scratch/out"}],
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "cfg", "mountPath": "/etc"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod = _pod(chore)
    pod["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c"}},
    ]
    spec = launch_spec(pod, chore, tmp_path / "pod")
    scratch = tmp_path / "pod.volumes" / "scratch"
    assert spec.argv[-8:] == [
        "--to", f"{scratch}/restore/1.0.0", "--keep", "/scratchpad/x", "--cfg", "/etc/x",
        "--to", "/tmp/kept",  # /tmp is TMPDIR; host paths under /tmp stay as they are
    ]  # fmt: skip
    assert spec.env["OUT"] == f"file://{scratch}/out" and scratch.is_dir()

    with pytest.raises(ContainerError, match="only `rankops"):
        launch_spec(_pod({"name": "x", "image": "busybox", "command": ["sh"]}), {"command": ["sh"]}, tmp_path)
    with pytest.raises(ContainerError) as unknown:
        launch_spec(_pod({"name": "x", "image": "nginx:1"}), {"image": "nginx:1"}, tmp_path)
    assert unknown.value.reason == "ErrImagePull"


def test_corrupted_labels_keep_queries_and_grades_but_move_the_items(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "examples" / "data" / "datasets"
    out = corrupt_labels(data, tmp_path / "bad")
    original = (data / "qrels" / "train.tsv").read_text().splitlines()
    corrupted = (out / "qrels" / "train.tsv").read_text().splitlines()
    assert len(original) == len(corrupted) and original[0] == corrupted[0]
    rows = [r.split("\t") for r in original[1:]], [r.split("\t") for r in corrupted[1:]]
    assert [(r[0], r[2]) for r in rows[0]] == [(r[0], r[2]) for r in rows[1]]
    moved = sum(a[1] != b[1] for a, b in zip(*rows, strict=True)) / len(rows[0])
    assert moved > 0.9
    assert (out / "qrels" / "test.tsv").read_text() == (data / "qrels" / "test.tsv").read_text()


def test_each_pod_gets_an_address_of_its_own_where_its_ports_are_free() -> None:
    import socket

    from rankops.sandbox.podnet import PodNetwork

    net = PodNetwork(second_octet=251)
    first = net.allocate([8080])
    with socket.socket() as taken:  # something else holds 8080 on the next address
        taken.bind(("127.251.0.3", 8080))
        taken.listen()
        second = net.allocate([8080])
    assert (first, second) == ("127.251.0.2", "127.251.0.4")
    with socket.socket() as sock:  # and a process can listen on it without any set-up
        sock.bind((second, 8080))


def test_prometheus_scrapes_each_pod_at_its_pod_ip_and_declared_port(api: SandboxAPIServer) -> None:
    from rankops.sandbox.prometheus import _scrape_groups

    deployment = _deployment("1", 2)
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "http",
    }
    api.create(deployment)
    DeploymentController(api.cluster).sync(Snapshot(api.cluster))
    first, second = _pods(api)
    _set_ready(api, first, True, ip="127.9.0.2")
    _set_ready(api, second, True)  # no pod IP yet: not a target
    groups = _scrape_groups(Snapshot(api.cluster))
    assert [g["targets"] for g in groups] == [["127.9.0.2:8080"]]
    assert groups[0]["labels"]["pod"] == first["metadata"]["name"]


def test_a_new_sandbox_starts_prometheus_and_alertmanager_on_empty_storage(tmp_path: Path) -> None:
    """A sandbox is a new cluster each start: an earlier one's series and alerts (same workdir,
    a second `make demo`) must not fire again about models that no longer exist."""
    from rankops.sandbox.alerting import Alertmanager, alertmanager_binary
    from rankops.sandbox.prometheus import Prometheus, prometheus_binary

    if prometheus_binary() is None or alertmanager_binary() is None:
        pytest.skip("needs the Debian prometheus and prometheus-alertmanager packages (make prometheus)")
    old = [tmp_path / name / "data" / "from-the-last-sandbox" for name in ("prometheus", "alertmanager")]
    for marker in old:
        marker.parent.mkdir(parents=True)
        marker.write_text("old")
    token = tmp_path / "token"
    token.write_text("t")
    alertmanager = Alertmanager(tmp_path / "alertmanager", "http://127.0.0.1:9/v1/alerts", token)
    prometheus = Prometheus(tmp_path / "prometheus")
    try:
        prometheus.wait_ready()
        alertmanager.wait_ready()
        assert not any(marker.exists() for marker in old)
    finally:
        prometheus.stop()
        alertmanager.stop()
