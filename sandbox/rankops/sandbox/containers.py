"""The container engine stand-in: what process a pod's container becomes on this machine.

No images are pulled or run. An image is known by the last part of its repository name:
``…/serving`` runs its entrypoint ``rankops serve`` (as ``Dockerfile.serving`` does) and
``…/operator`` runs ``rankops operator run``; a container with ``command`` runs that command,
which must be ``rankops …`` (the only program the images hold). ``rankops`` is this Python's
``python -m rankops.cli``, with the sandbox's own source roots on ``PYTHONPATH``.

Ports: every container port is mapped to a free loopback port (as ``docker -p`` does), so
two pods can both "listen on 8080". The serving entrypoint gets ``--host 127.0.0.1 --port
<host port of its first port>``. The pod's ``/tmp`` (an ``emptyDir`` in the manifests) is a
directory of its own under the sandbox's work directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ContainerError", "LaunchSpec", "launch_spec"]

ENTRYPOINTS: dict[str, tuple[str, ...]] = {
    "serving": ("serve", "--host", "127.0.0.1", "--port", "{port}"),
    "operator": ("operator", "run"),
}
# What every process inherits from the sandbox (the rest of the environment is the pod's).
INHERITED = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "RANKOPS_TORCH_THREADS")


class ContainerError(Exception):
    """The container cannot run here; ``reason`` is the waiting reason kubectl shows."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # container port name (or number) -> host port
    readiness_path: str | None = None
    readiness_port: int | None = None


def _repository(image: str) -> str:
    name = image.rsplit("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _env(container: Mapping[str, Any], pod: Mapping[str, Any], tmp: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env.setdefault("RANKOPS_TORCH_THREADS", "1")  # the machine is shared: one core per process
    meta = pod.get("metadata") or {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        values = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace")}
        if ref in values and values[ref] is not None:
            env[item["name"]] = str(values[ref])
        else:
            raise ContainerError(
                "CreateContainerConfigError", f"env {item.get('name')}: only value and fieldRef metadata.*"
            )
    env["TMPDIR"] = str(tmp)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _rankops_argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "rankops.cli", *args]


def launch_spec(
    pod: Mapping[str, Any], container: Mapping[str, Any], tmp: Path, host_ports: Sequence[int]
) -> LaunchSpec:
    """The process for ``container`` of ``pod``; ``host_ports`` are free ports to map onto."""
    ports: dict[str, int] = {}
    free = list(host_ports)
    for port in container.get("ports") or []:
        if not free:
            raise ContainerError("CreateContainerError", "no free host port left to map")
        host = free.pop(0)
        ports[str(port.get("containerPort"))] = host
        if port.get("name"):
            ports[str(port["name"])] = host
    first_port = next(iter(ports.values()), None)
    env = _env(container, pod, tmp)
    command = list(container.get("command") or []) + list(container.get("args") or [])
    if container.get("command"):
        if Path(command[0]).name != "rankops":
            raise ContainerError(
                "RunContainerError", f"the sandbox runs only `rankops …` commands, not {command[0]!r}"
            )
        argv = _rankops_argv(command[1:])
    else:
        entry = ENTRYPOINTS.get(_repository(str(container.get("image", ""))))
        if entry is None:
            raise ContainerError(
                "ErrImagePull",
                f"image {container.get('image')!r} is not one the sandbox can run "
                f"(known: {', '.join(f'…/{k}' for k in ENTRYPOINTS)})",
            )
        argv = _rankops_argv([a.format(port=first_port) for a in entry])
        argv += [str(a) for a in container.get("args") or []]
    probe = ((container.get("readinessProbe") or {}).get("httpGet")) or None
    path = port_number = None
    if probe:
        path = str(probe.get("path") or "/")
        port_number = ports.get(str(probe.get("port")))
        if port_number is None:
            raise ContainerError(
                "CreateContainerError", f"readiness probe port {probe.get('port')!r} unknown"
            )
    return LaunchSpec(argv, env, ports, path, port_number)
