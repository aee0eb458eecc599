"""The stable track: the first deploy, settling outside a rollout, draining the canary after one.

- No ``stableVersion`` yet: the spec version becomes stable directly (phase Healthy, or Pending
  while ``observed.stable_ready`` is False).
- After a change to the stable track's pods (first deploy, promotion, in-place URI update, a
  rollout ended with the stable track scaled back up) ``awaitingStableSince`` is set until a
  plan sees the stable track ready. Meanwhile a not-ready stable is expected: phase Progressing
  (Pending on the first deploy), Degraded only once ``progressDeadline`` has passed. Otherwise
  Degraded is a stable track that was ready and stopped being so.
- A promoted canary, or a rolled-back one that left the stable track no pods, keeps serving
  (``canaryDraining``) until the stable track reports ready (``drain``). Behind an HTTPRoute
  ``canaryWeight`` stays set outside the rollout meanwhile (raised to 100 once the canary runs at
  full size); when the stable track reports ready the route switches to it (Event
  ``TrafficSwitched``) and a later plan (requeued at once) scales the canary down, so the route
  never points at a canary being removed.
"""

from __future__ import annotations

from datetime import timedelta

from .context import PlanningPass
from .state import ROLLOUT_RESET, RolloutState

__all__ = ["await_stable", "awaiting_message", "deploy_first", "drain", "settle"]


def deploy_first(p: PlanningPass) -> None:
    m = p.spec.model
    phase = "Pending" if p.observed.stable_ready is False else "Healthy"
    p.set(
        stable_version=m.version,
        stable_uri=m.uri,
        phase=phase,
        message=f"serving {m.version}",
        **ROLLOUT_RESET,
    )
    await_stable(p)
    p.event("Normal", "Deployed", f"deploying {m.version} as stable")
    p.add_history(m.version, m.uri, "Deployed", "Created")


def settle(p: PlanningPass, before: RolloutState) -> None:
    """The spec is at the stable version, no rollout: update the stable track in place if its URI
    changed, and name the phase (``before``: the state this pass started from)."""
    m = p.spec.model
    if m.uri != p.state.stable_uri:
        p.event(
            "Warning",
            "UriChangedWithoutVersion",
            f"model uri changed for the same version {m.version}: updating stable in place",
        )
        p.set(stable_uri=m.uri)
        p.add_history(m.version, m.uri, "Deployed", "UriChanged")
        await_stable(p)
        if p.state.awaiting_stable_since is not None:
            p.set(phase="Progressing", message=awaiting_message(p), aborted_version=None)
            return
    phase, message = _settled_phase(p)
    if phase == "Degraded" and before.phase != "Degraded":
        p.event("Warning", "StableNotReady", message)
    p.set(phase=phase, message=message, aborted_version=None)


def drain(p: PlanningPass) -> None:
    """The canary track serves the stable version while the stable track rolls to it.

    Replica ratio: both tracks sit behind the Service ``<m>``; once the stable track is ready the
    canary is scaled down. Gateway API: ``canaryWeight`` is the route's share for the canary
    track meanwhile (all of it once the canary runs at full size); once the stable track is ready
    with the new version the route switches to it (weight 0), and the canary is scaled down only
    by a later plan, after the shell has applied the switched route.
    """
    st = p.state
    if p.observed.stable_ready is not False:
        if st.canary_weight > 0:
            p.set(canary_weight=0)
            p.event(
                "Normal",
                "TrafficSwitched",
                f"stable {st.stable_version} is ready; route switched to the stable track "
                "(the canary track is scaled down next)",
            )
            p.wake_at(p.now)
            return
        p.set(canary_draining=False)
        p.event("Normal", "StableReady", f"stable {st.stable_version} is ready; canary track scaled down")
        return
    if p.gateway and st.canary_weight < 100 and p.observed.canary_ready:
        # Promoted from a lower weight: the canary now runs at full size, so it takes all traffic.
        p.set(canary_weight=100)
        p.event(
            "Normal",
            "TrafficShifted",
            f"stable {st.stable_version} still rolling out; the canary track (ready at full size) "
            "takes all traffic meanwhile",
        )


def await_stable(p: PlanningPass) -> None:
    """The stable track's pods are about to change: a "not ready" that follows is expected, not Degraded.

    Only with readiness reports (``observed.stable_ready`` known); cleared by the first plan that
    sees the stable track ready.
    """
    if p.observed.stable_ready is not None:
        p.set(awaiting_stable_since=p.now)


def awaiting_message(p: PlanningPass) -> str:
    last = p.state.history[-1] if p.state.history else None
    if last is not None and last.outcome == "Promoted":
        doing = "promoting"
    elif last is not None and last.outcome == "Deployed":
        doing = "updating" if last.reason == "UriChanged" else "deploying"
    else:
        doing = "restoring stable"
    return f"{doing}: waiting for stable {p.state.stable_version} to be ready"


def _settled_phase(p: PlanningPass) -> tuple[str, str]:
    """Phase and message outside a rollout with the spec at the stable version."""
    st, version = p.state, p.state.stable_version
    if p.observed.stable_ready is not False:
        return "Healthy", f"serving {version}"
    # The first deploy, not ready yet.
    created = bool(st.history) and st.history[-1].reason == "Created"
    if st.phase == "Pending" or (created and st.awaiting_stable_since is not None):
        return "Pending", f"stable {version} is not ready"
    since = st.awaiting_stable_since
    deadline_s = p.spec.rollout.progress_deadline_s
    if since is not None:  # after a promotion/rollback/update: expected until its deadline
        deadline = since + timedelta(seconds=deadline_s)
        if p.now < deadline:
            p.wake_at(deadline)
            return "Progressing", awaiting_message(p)
        serving = "; the canary track serves it meanwhile" if st.canary_draining else ""
        return "Degraded", f"stable {version} not ready within {deadline_s:g}s{serving}"
    if st.canary_draining:
        return "Progressing", awaiting_message(p)
    return "Degraded", f"stable {version} is not ready"
