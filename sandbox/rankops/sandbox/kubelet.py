"""The kubelet stand-in: every Pod in the emulator runs as a real local process.

- A Pod is started (one container: the first; sidecar containers are not run) as
  :mod:`rankops.sandbox.containers` says, after its ``initContainers``, each run to completion
  in order (one that fails is retried after the back-off, or with ``restartPolicy: Never``
  fails the Pod, as a kubelet does). Each Pod has an IP of its own, a loopback alias
  (:mod:`rankops.sandbox.podnet`) reported as ``status.podIP``, and its process listens on
  the container's declared ports there, as in a cluster.
- Readiness comes from the container's ``readinessProbe`` (HTTP GET on ``podIP:port``),
  probed every ``probe_interval`` seconds (DIFFERENCE: faster than the probe's
  ``periodSeconds``; one success makes it Ready, ``failureThreshold`` failures in a row make
  it NotReady); without a probe a running container is Ready. Liveness and startup probes are
  not run.
- A process that exits: with ``restartPolicy`` Always (or OnFailure and a non-zero code) it is
  restarted after a back-off that doubles from ``backoff_base`` up to ``backoff_max`` seconds
  (``CrashLoopBackOff`` meanwhile, ``restartCount`` counting); otherwise the Pod ends
  ``Succeeded`` or ``Failed`` with the exit code in ``containerStatuses[].state.terminated``.
- A Pod deleted from the API has its process stopped (SIGTERM, SIGKILL after the grace period).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from rankops.sandbox.containers import ContainerError, LaunchSpec, container_ports, launch_spec
from rankops.sandbox.objects import Snapshot, utc_now, write_status
from rankops.sandbox.podnet import PodNetwork
from rankops.sandbox.processes import ManagedProcess, stop_all
from rankops.sandbox.semantics import Cluster

__all__ = ["Kubelet", "pod_address", "pod_ports"]

log = logging.getLogger(__name__)
MANAGER = "sandbox-kubelet"
NODE = "sandbox"
HOST_IP = "127.0.0.1"


def pod_ports(pod: Mapping[str, Any]) -> dict[str, int]:
    """The ports the pod's (first) container declares: name and number -> number."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return container_ports(containers[0])


def pod_address(pod: Mapping[str, Any]) -> str | None:
    """``status.podIP`` (None before the kubelet gave the pod one)."""
    ip = (pod.get("status") or {}).get("podIP")
    return str(ip) if ip else None


@dataclass
class PodRun:
    """What the kubelet knows of one pod (by uid)."""

    uid: str
    namespace: str
    name: str
    tmp: Path
    spec: LaunchSpec | None = None
    proc: ManagedProcess | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 0.0
    ready: bool = False
    failures: int = 0
    started_at: str | None = None
    last_terminated: dict[str, Any] | None = None
    waiting: tuple[str, str] | None = None  # (reason, message)
    finished: dict[str, Any] | None = None  # terminated state of a pod that will not restart
    ip: str = ""  # the pod's address, for its whole life
    inits_done: int = 0  # init containers that completed
    in_init: bool = False  # the running process is an init container
    probe_task: asyncio.Task[bool] | None = field(default=None, repr=False)


class Kubelet:
    def __init__(
        self,
        cluster: Cluster,
        workdir: Path,
        *,
        probe_interval: float = 0.5,
        backoff_base: float = 1.0,
        backoff_max: float = 8.0,
        grace: float = 5.0,
        image_root: Path | None = None,
    ) -> None:
        self.cluster = cluster
        self.image_root = image_root
        self.workdir = workdir
        self.probe_interval = probe_interval
        self.backoff_base, self.backoff_max, self.grace = backoff_base, backoff_max, grace
        self.runs: dict[str, PodRun] = {}
        self.network = PodNetwork()
        self._stopping: list[ManagedProcess] = []
        self._last_probe = 0.0
        self._session: aiohttp.ClientSession | None = None

    # -- the sync pass ------------------------------------------------------------------------

    async def sync(self, snap: Snapshot) -> None:
        pods = {p["metadata"]["uid"]: p for p in snap.of("", "pods")}
        for uid in [u for u in self.runs if u not in pods or pods[u]["metadata"].get("deletionTimestamp")]:
            self._forget(uid)
        self._stopping = [p for p in self._stopping if not p.reap(self.grace)]
        now = time.monotonic()
        for uid, pod in pods.items():
            if pod["metadata"].get("deletionTimestamp"):
                continue
            run = self.runs.get(uid)
            if run is None:
                meta = pod["metadata"]
                tmp = self.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{uid[:8]}"
                wanted = set(pod_ports(pod).values())
                for init in (pod.get("spec") or {}).get("initContainers") or []:
                    wanted |= set(container_ports(init).values())
                ip = self.network.allocate(wanted)
                run = self.runs[uid] = PodRun(uid, meta["namespace"], meta["name"], tmp, ip=ip)
            self._step(run, pod, now)
        await self._probe(now)
        for uid, pod in pods.items():
            if uid in self.runs and not pod["metadata"].get("deletionTimestamp"):
                self._report(self.runs[uid], pod)

    def _step(self, run: PodRun, pod: Mapping[str, Any], now: float) -> None:
        if run.finished is not None:
            return
        if run.proc is not None:
            code = run.proc.poll()
            if code is None:
                return
            self._exited(run, pod, code, now)
            return
        if now >= run.next_start:
            self._start(run, pod)

    def _start(self, run: PodRun, pod: Mapping[str, Any]) -> None:
        containers = (pod.get("spec") or {}).get("containers") or []
        if not containers:
            run.waiting = ("CreateContainerConfigError", "the pod has no containers")
            return
        inits = (pod.get("spec") or {}).get("initContainers") or []
        if run.inits_done < len(inits):
            self._start_init(run, pod, inits[run.inits_done])
            return
        container = containers[0]
        try:
            if run.spec is None:
                run.tmp.mkdir(parents=True, exist_ok=True)
                run.spec = launch_spec(pod, container, run.tmp, run.ip, self.image_root)
            run.proc = ManagedProcess(
                run.spec.argv, env=run.spec.env, log_path=run.tmp.parent / f"{run.tmp.name}.log"
            )
        except ContainerError as exc:
            run.waiting = (exc.reason, exc.message)
            run.next_start = time.monotonic() + self.backoff_max
            return
        except OSError as exc:
            run.waiting = ("RunContainerError", str(exc))
            run.next_start = time.monotonic() + self.backoff_max
            return
        run.waiting = None
        run.started_at = utc_now()
        run.ready = run.spec.readiness_path is None
        run.failures = 0
        log.info("pod %s/%s started: pid %d %s", run.namespace, run.name, run.proc.pid, run.spec.argv)

    def _start_init(self, run: PodRun, pod: Mapping[str, Any], container: Mapping[str, Any]) -> None:
        try:
            run.tmp.mkdir(parents=True, exist_ok=True)
            spec = launch_spec(pod, container, run.tmp, run.ip, self.image_root)
            run.proc = ManagedProcess(
                spec.argv, env=spec.env, log_path=run.tmp.parent / f"{run.tmp.name}.init-{run.inits_done}.log"
            )
        except (ContainerError, OSError) as exc:
            reason, message = (
                (exc.reason, exc.message)
                if isinstance(exc, ContainerError)
                else ("RunContainerError", str(exc))
            )
            run.waiting = (reason, message)
            run.next_start = time.monotonic() + self.backoff_max
            return
        run.in_init, run.waiting, run.started_at = True, ("PodInitializing", ""), utc_now()
        log.info(
            "pod %s/%s init container %d started: %s", run.namespace, run.name, run.inits_done, spec.argv
        )

    def _exited(self, run: PodRun, pod: Mapping[str, Any], code: int, now: float) -> None:
        assert run.proc is not None
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": run.started_at,
            "finishedAt": utc_now(),
        }
        if code != 0:
            log.warning("pod %s/%s exited %d: %s", run.namespace, run.name, code, run.proc.tail(600))
        run.proc = None
        run.ready = False
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        if run.in_init:
            run.in_init = False
            if code == 0:  # on to the next init container, or the main one
                run.inits_done += 1
                run.next_start = now
                return
            if policy == "Never":
                run.finished = terminated
                return
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            run.finished = terminated
            return
        run.last_terminated = terminated
        run.restarts += 1
        run.backoff = min(self.backoff_max, run.backoff * 2 if run.backoff else self.backoff_base)
        run.next_start = now + run.backoff
        run.waiting = ("CrashLoopBackOff", f"back-off {run.backoff:g}s restarting failed container")

    def _forget(self, uid: str) -> None:
        run = self.runs.pop(uid)
        if run.probe_task is not None:
            run.probe_task.cancel()
        if run.proc is not None and run.proc.running:
            run.proc.terminate()
            self._stopping.append(run.proc)

    # -- readiness ------------------------------------------------------------------------------

    async def _probe(self, now: float) -> None:
        for run in self.runs.values():
            task = run.probe_task
            if task is not None and task.done():
                run.probe_task = None
                ok = not task.cancelled() and task.exception() is None and task.result()
                if run.proc is None or not run.proc.running:
                    continue
                if ok:
                    run.ready, run.failures = True, 0
                else:
                    run.failures += 1
                    if run.failures >= 3:
                        run.ready = False
        if now - self._last_probe < self.probe_interval:
            return
        self._last_probe = now
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0))
        for run in self.runs.values():
            spec = run.spec
            if run.proc is None or spec is None or spec.readiness_path is None or run.probe_task is not None:
                continue
            url = f"http://{spec.ip}:{spec.readiness_port}{spec.readiness_path}"
            run.probe_task = asyncio.ensure_future(self._get(url))

    async def _get(self, url: str) -> bool:
        assert self._session is not None
        try:
            async with self._session.get(url) as response:
                return 200 <= response.status < 400
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    # -- status -----------------------------------------------------------------------------------

    def _report(self, run: PodRun, pod: Mapping[str, Any]) -> None:
        old = pod.get("status") or {}
        now = utc_now()
        running = run.proc is not None and run.proc.running
        if run.finished is not None:
            phase = "Succeeded" if run.finished["exitCode"] == 0 else "Failed"
            state: dict[str, Any] = {"terminated": run.finished}
        elif running and not run.in_init:
            phase, state = "Running", {"running": {"startedAt": run.started_at}}
        else:
            phase = "Running" if run.restarts else "Pending"
            reason, message = run.waiting or ("ContainerCreating", "")
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        ready = running and run.ready and not run.in_init
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        container_status: dict[str, Any] = {
            "name": containers[0].get("name", "main"),
            "image": containers[0].get("image", ""),
            "imageID": "",
            "containerID": f"sandbox://{run.proc.pid}" if run.proc is not None else "",
            "ready": ready,
            "started": running,
            "restartCount": run.restarts,
            "state": state,
        }
        if run.last_terminated:
            container_status["lastState"] = {"terminated": run.last_terminated}
        old_conditions = {c.get("type"): c for c in old.get("conditions") or []}

        def condition(ctype: str, value: bool) -> dict[str, Any]:
            text = "True" if value else "False"
            prior = old_conditions.get(ctype)
            since = prior["lastTransitionTime"] if prior and prior.get("status") == text else now
            return {"type": ctype, "status": text, "lastProbeTime": None, "lastTransitionTime": since}

        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": run.ip,
            "podIPs": [{"ip": run.ip}],
            "startTime": old.get("startTime") or now,
            "qosClass": "BestEffort",
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", True),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "containerStatuses": [container_status],
        }
        write_status(self.cluster, pod, status, MANAGER)

    # -- shutdown ---------------------------------------------------------------------------------

    def processes(self) -> list[ManagedProcess]:
        return [r.proc for r in self.runs.values() if r.proc is not None] + list(self._stopping)

    async def close(self) -> None:
        """Stop every process this kubelet started (SIGTERM together, then SIGKILL)."""
        for run in self.runs.values():
            if run.probe_task is not None:
                run.probe_task.cancel()
        procs = self.processes()
        self.runs.clear()
        self._stopping = []
        await asyncio.get_running_loop().run_in_executor(None, stop_all, procs, self.grace)
        if self._session is not None:
            await self._session.close()
            self._session = None
