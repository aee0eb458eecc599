"""The container engine stand-in: what process a pod's container becomes on this machine.

No images are pulled or run. An image is known by the last part of its repository name:
``…/serving`` runs its entrypoint ``rankops serve`` (as ``Dockerfile.serving`` does) and
``…/operator`` runs ``rankops operator run``; a container with ``command`` runs that command,
which must be ``rankops …`` (the only program the images hold). ``rankops`` is this Python's
``python -m rankops.cli``, with the sandbox's own source roots on ``PYTHONPATH``.

Ports: every pod has an address of its own on loopback (:mod:`rankops.sandbox.podnet`), so
two pods can both listen on 8080, each on its pod IP, as in a cluster. The serving entrypoint
gets ``--host <pod IP> --port <its first container port>``; the Downward API's
``status.podIP`` is that address. The pod's ``/tmp`` (an ``emptyDir`` in the manifests) is a
directory of its own under the sandbox's work directory (``TMPDIR``), and so is every other
``emptyDir`` the container mounts (``/scratch`` of the maintenance Jobs): arguments and environment values
under its mount path point into ``<pod dir>.volumes/<volume name>``, shared by the pod's
containers and gone with the sandbox, never the host's own ``/scratch``.

The image's files: the serving image holds the example model under ``/models`` (see
``Dockerfile.serving``); with an ``image_root``, ``file:///models/…`` and ``/models/…`` in
the container's environment and arguments point into ``<image_root>/models/…`` instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ContainerError", "LaunchSpec", "container_ports", "launch_spec"]

ENTRYPOINTS: dict[str, tuple[str, ...]] = {
    "serving": ("serve", "--host", "{ip}", "--port", "{port}"),
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
    ip: str = "127.0.0.1"  # the pod's address: its ports listen there
    ports: dict[str, int] = field(default_factory=dict)  # container port name (or number) -> number
    readiness_path: str | None = None
    readiness_port: int | None = None


def _repository(image: str) -> str:
    name = image.rsplit("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _in_image(value: str, image_root: Path | None) -> str:
    if image_root is None:
        return value
    for prefix in ("file:///models/", "/models/"):
        if value.startswith(prefix):
            rest = value[len(prefix) :]
            return ("file://" if prefix.startswith("file") else "") + str(image_root / "models" / rest)
    return value


def _empty_dirs(pod: Mapping[str, Any], container: Mapping[str, Any], tmp: Path) -> list[tuple[str, Path]]:
    """(mount path, host directory) of each ``emptyDir`` the container mounts, longest path first."""
    empty = {str(v.get("name")) for v in (pod.get("spec") or {}).get("volumes") or [] if "emptyDir" in v}
    mounts = []
    for mount in container.get("volumeMounts") or []:
        name, path = str(mount.get("name")), str(mount.get("mountPath") or "").rstrip("/")
        # /tmp is TMPDIR (above), not rewritten: the sandbox's own paths may live under /tmp.
        if name not in empty or not path or path == "/tmp":
            continue
        host = tmp.parent / f"{tmp.name}.volumes" / name
        host.mkdir(parents=True, exist_ok=True)
        mounts.append((path, host))
    return sorted(mounts, key=lambda m: -len(m[0]))


def _on_host(value: str, image_root: Path | None, mounts: Sequence[tuple[str, Path]]) -> str:
    for path, host in mounts:
        for prefix in ("file://", ""):
            whole = prefix + path
            if value == whole or value.startswith(whole + "/"):
                return prefix + str(host) + value[len(whole) :]
    return _in_image(value, image_root)


def _env(
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    tmp: Path,
    image_root: Path | None,
    mounts: Sequence[tuple[str, Path]] = (),
    pod_ip: str = "127.0.0.1",
) -> dict[str, str]:
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env.setdefault("RANKOPS_TORCH_THREADS", "1")  # the machine is shared: one core per process
    meta = pod.get("metadata") or {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = _on_host(str(item["value"]), image_root, mounts)
            continue
        ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        values = {
            "metadata.name": meta.get("name"),
            "metadata.namespace": meta.get("namespace"),
            "status.podIP": pod_ip,
        }
        if ref in values and values[ref] is not None:
            env[item["name"]] = str(values[ref])
        else:
            raise ContainerError(
                "CreateContainerConfigError",
                f"env {item.get('name')}: only value and fieldRef metadata.name, metadata.namespace,"
                " status.podIP",
            )
    env["TMPDIR"] = str(tmp)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _rankops_argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "rankops.cli", *args]


def container_ports(container: Mapping[str, Any]) -> dict[str, int]:
    """Port name and number (both as keys) -> number, for the container's declared ports."""
    ports: dict[str, int] = {}
    for port in container.get("ports") or []:
        try:
            number = int(port.get("containerPort"))
        except (TypeError, ValueError):
            continue
        ports[str(number)] = number
        if port.get("name"):
            ports[str(port["name"])] = number
    return ports


def launch_spec(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    tmp: Path,
    pod_ip: str = "127.0.0.1",
    image_root: Path | None = None,
) -> LaunchSpec:
    """The process for ``container`` of ``pod``, listening on ``pod_ip``."""
    ports = container_ports(container)
    first_port = next(iter(ports.values()), 8080)  # the serving image's port when none is declared
    mounts = _empty_dirs(pod, container, tmp)
    env = _env(container, pod, tmp, image_root, mounts, pod_ip)
    command = [
        _on_host(str(a), image_root, mounts)
        for a in [*(container.get("command") or []), *(container.get("args") or [])]
    ]
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
        argv = _rankops_argv([a.format(ip=pod_ip, port=first_port) for a in entry])
        argv += [_on_host(str(a), image_root, mounts) for a in container.get("args") or []]
    probe = ((container.get("readinessProbe") or {}).get("httpGet")) or None
    path = port_number = None
    if probe:
        path = str(probe.get("path") or "/")
        port_number = ports.get(str(probe.get("port")))
        if port_number is None:
            raise ContainerError(
                "CreateContainerError", f"readiness probe port {probe.get('port')!r} unknown"
            )
    return LaunchSpec(argv, env, pod_ip, ports, path, port_number)
