"""kopf peering for several operator replicas (high availability).

kopf lets an operator act only while no live peer in the peering object has a higher or the
same priority (same-priority peers all pause), and a peer counts as live until its record is
older than its lifetime. So every replica gets its own priority (random unless set) and
the lifetime bounds the takeover after a leader dies without a clean exit (a clean exit
removes its record at once).

Environment (``rankops operator run --peering NAME`` sets the first):

- ``RANKOPS_PEERING``: the peering object's name (a ClusterKopfPeering when cluster-wide, a
  KopfPeering per namespace otherwise); unset: standalone, no peering.
- ``RANKOPS_PEERING_PRIORITY`` (random in [1, 2**31)): this replica's priority.
- ``RANKOPS_PEERING_LIFETIME`` (``15``): seconds a silent peer counts as live.

``rankops operator run --peering`` fixes the priority in the environment before ``kopf.run``
(so the startup handler, which calls :meth:`PeeringConfig.apply`, reads the same one).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from typing import Any

__all__ = ["PeeringConfig"]

DEFAULT_LIFETIME = 15


@dataclasses.dataclass(frozen=True)
class PeeringConfig:
    name: str
    priority: int
    lifetime: int = DEFAULT_LIFETIME

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PeeringConfig | None:
        env = os.environ if env is None else env
        name = env.get("RANKOPS_PEERING", "").strip()
        if not name:
            return None

        def integer(key: str, default: int, low: int) -> int:
            raw = env.get(key, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError as exc:
                raise ValueError(f"{key} must be an integer, got {raw!r}") from exc
            if value < low:
                raise ValueError(f"{key} must be at least {low}, got {value}")
            return value

        priority = integer("RANKOPS_PEERING_PRIORITY", 1 + secrets.randbelow(2**31 - 1), 0)
        return cls(name, priority, integer("RANKOPS_PEERING_LIFETIME", DEFAULT_LIFETIME, 2))

    def apply(self, settings: Any) -> None:
        """Set kopf's ``settings.peering`` (a ``kopf.OperatorSettings``) for this replica."""
        settings.peering.standalone = False
        settings.peering.mandatory = True  # a missing peering object fails instead of acting alone
        settings.peering.name = self.name
        settings.peering.priority = self.priority
        settings.peering.lifetime = self.lifetime
