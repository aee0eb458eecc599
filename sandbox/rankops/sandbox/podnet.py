"""Pod IPs of the sandbox: every pod gets an address of its own on loopback, as a CNI plugin
gives every pod one on the cluster network.

Linux routes the whole of ``127.0.0.0/8`` to ``lo``, so a process binds ``127.a.b.c`` without
any set-up; a pod's process therefore listens on its container's declared port (``8080``)
on its own address, and whatever reaches a pod at ``podIP:containerPort`` (a Service's
endpoints, Prometheus, the operator's DriftCheck Job) works as in a cluster.

Addresses are handed out in order from ``127.<n>.0.2`` (``n`` random per sandbox, so two
sandboxes on one machine rarely share a range) and never reused within a sandbox. An address
is taken only where every port the pod declares can be bound on it now (another sandbox, or
anything else on the machine, may hold one).
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

__all__ = ["PodNetwork", "can_bind"]


def can_bind(ip: str, port: int) -> bool:
    """Whether a server could listen on ``ip:port`` now (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
        return True


class PodNetwork:
    def __init__(self, second_octet: int | None = None) -> None:
        self.second = second_octet if second_octet is not None else random.randint(16, 250)
        self._next = 2  # .0.0 and .0.1 are the range's network and "gateway", as on a node

    def _address(self, n: int) -> str:
        return f"127.{self.second}.{(n >> 8) & 0xFF}.{n & 0xFF}"

    def allocate(self, ports: Iterable[int] = ()) -> str:
        """The next free address on which every port in ``ports`` can be bound."""
        wanted = sorted(set(ports))
        for _ in range(1 << 16):
            n, self._next = self._next, self._next + 1
            if n & 0xFF in (0, 255):  # no .0 or .255 host part: less surprising to read
                continue
            ip = self._address(n)
            if all(can_bind(ip, p) for p in wanted):
                return ip
        raise RuntimeError(f"no free pod address left in 127.{self.second}.0.0/16")
