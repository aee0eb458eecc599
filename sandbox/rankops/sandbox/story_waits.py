"""Waiting on the story's RankingModel: until an act's outcome shows in its status, and whether
the route and the stable Deployment are ready (what a user would read with ``kubectl get``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rankops.sandbox.stack import Sandbox
from rankops.sandbox.timeline import Recorder

__all__ = ["rollout_outcome", "route_ready", "since", "stable_ready", "wait_for_outcome"]


def wait_for_outcome(rec: Recorder, done: Callable[[dict[str, Any]], str | None], timeout: float) -> str:
    """``done(status)``'s first non-empty answer, or ``TimedOut(<phase>)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = done(rec.status())
        if outcome:
            return outcome
        time.sleep(0.2)
    return f"TimedOut({rec.status().get('phase')})"


def rollout_outcome(version: str) -> Callable[[dict[str, Any]], str | None]:
    """Promoted, RolledBack or Failed once the rollout of ``version`` ended."""

    def outcome(st: dict[str, Any]) -> str | None:
        history = st.get("history") or []
        last = history[-1] if history else {}
        if (
            st.get("phase") == "Healthy"
            and st.get("stableVersion") == version
            and not st.get("canaryVersion")
        ):
            return "Promoted"
        if st.get("phase") == "RolledBack" and last.get("version", version) == version:
            return "RolledBack"
        if st.get("phase") == "Failed":
            return "Failed"
        return None

    return outcome


def since(t0: float) -> float:
    return round(time.monotonic() - t0, 1)


def route_ready(sb: Sandbox, model: str) -> bool:
    return bool(sb.entry.choose(model))


def stable_ready(sb: Sandbox, model: str, namespace: str) -> bool:
    """The stable Deployment runs its current template on every replica, all ready, no old pod left."""
    assert sb.api is not None
    d = sb.api.get_object("deployments", f"{model}-stable", namespace) or {}
    spec, status = d.get("spec") or {}, d.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        int(status.get("observedGeneration", 0)) >= int(d.get("metadata", {}).get("generation", 1))
        and int(status.get("updatedReplicas", 0)) >= want
        and int(status.get("readyReplicas", 0)) >= want
        and int(status.get("replicas", 0)) == want
    )
