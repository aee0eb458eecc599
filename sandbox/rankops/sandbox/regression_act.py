"""The demo's act v4: a regression that only shows after promotion, rolled back on an alert.

4.0.0 was trained without any ``machine_learning`` query
(:func:`rankops.sandbox.versions.without_domain_queries`). Everyday traffic has no such
queries, so its canary is judged no worse than 2.0.0 and it is promoted. Then the query mix shifts (the
traffic generator sends mostly ``machine_learning`` queries, as after a launch that brings a
new audience): the stable track's online NDCG@3 falls under the QualitySLO's breach level.
The sandbox Prometheus evaluates the rules ``rankops slo rules`` compiled from that SLO, the
breach alert fires, Alertmanager delivers it to the operator's receiver, and the operator
(its QualitySLO controller, ``postPromotion: Rollback``) confirms the breach and rolls back to
2.0.0. The spec still says 4.0.0.

Before the act the story sets the SLO's evaluation interval to 10 minutes (a GitOps commit
like any other): from then on only an alert makes the operator look sooner, so what acts is
the alert path, not a timer tick that happened to come first.

Figures (from what the recorder saw): ``breach_to_rollback_s`` from the moment Prometheus
found the breach condition true (the alert's ``activeAt``) to the status saying RolledBack;
``alert_to_rollback_s`` from the alert firing (Alertmanager's ``startsAt``) to the same;
``shift_to_rollback_s`` from the query-mix shift; ``bad_served_after_rollback_s`` how long
4.0.0 pods still answered while the stable Deployment rolled back to 2.0.0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from rankops.sandbox.stack import Sandbox
from rankops.sandbox.story_waits import rollout_outcome, since, stable_ready, wait_for_outcome
from rankops.sandbox.timeline import AlertSeen, Recorder
from rankops.sandbox.traffic import TrafficGenerator

__all__ = ["play_regression"]

BREACH_ALERT = "RankopsSLOBreach"


def _epoch(rfc3339: str) -> float | None:
    """Seconds since the epoch of Prometheus's and Alertmanager's times (nanoseconds cut to µs)."""
    if not rfc3339:
        return None
    text = rfc3339.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _first(alerts: Sequence[AlertSeen], match: Callable[[AlertSeen], bool]) -> AlertSeen | None:
    return next((a for a in alerts if match(a)), None)


def play_regression(
    sb: Sandbox,
    rec: Recorder,
    traffic: TrafficGenerator,
    *,
    apply_model: Callable[[], object],
    shifted: Sequence[tuple[str, dict[str, int]]],
    shift_label: str,
    version: str,
    previous: str,
    model: str,
    namespace: str,
    timeout: float,
) -> dict[str, Any]:
    """Canary ``version`` on the everyday mix, shift the mix once it is stable, wait for the rollback."""
    t0 = time.monotonic()
    applied = time.time()
    apply_model()
    promoted = wait_for_outcome(rec, rollout_outcome(version), timeout)
    result: dict[str, Any] = {"act": "v4", "expected": "RolledBackAfterPromotion", "canary": promoted}
    if promoted != "Promoted":
        result.update(outcome=f"Canary{promoted}", seconds=since(t0))
        result["events"] = sorted(set(rec.reasons(applied)))
        return result
    wait_for_outcome(rec, lambda st: "ready" if stable_ready(sb, model, namespace) else None, 60)
    shift_at = time.time()
    traffic.set_queries(shifted)
    rec.mark(shift_label)

    def rolled_back(st: dict[str, Any]) -> str | None:
        history = st.get("history") or []
        last = history[-1] if history else {}
        if st.get("phase") == "RolledBack" and st.get("stableVersion") == previous:
            return "RolledBackAfterPromotion" if last.get("version") == version else "RolledBack"
        return None

    outcome = wait_for_outcome(rec, rolled_back, timeout)
    wait_for_outcome(rec, lambda st: "ready" if stable_ready(sb, model, namespace) else None, 60)
    time.sleep(1.0)  # the Events of the decision are posted just after the status
    rec.sample()
    rec.poll_alerts()
    history = rec.status().get("history") or []
    result.update(
        outcome=outcome,
        seconds=since(t0),
        reason=(history[-1] if history else {}).get("reason"),
        events=sorted(set(rec.reasons(applied))),
    )
    back = rec.first(lambda s: s.phase == "RolledBack" and s.stable == previous, after=shift_at)
    stable_bad = [j for j in traffic.judged if j.at >= shift_at and j.version == version]
    result["bad_requests_served"] = len(stable_bad)
    if stable_bad:
        result["bad_ndcg_at_3"] = round(sum(j.ndcg for j in stable_bad) / len(stable_bad), 3)
    ours = [a for a in rec.alerts if (a.alertname, a.version, a.track) == (BREACH_ALERT, version, "stable")]
    pending = _first(ours, lambda a: a.source == "prometheus")
    held = _first(ours, lambda a: a.source == "alertmanager")
    breach_at = _epoch(pending.since) if pending else None
    alert_at = _epoch(held.since) if held else None
    result["alert"] = {
        "name": BREACH_ALERT,
        "breach_at_s": round(rec.elapsed(breach_at), 1) if breach_at else None,
        "fired_at_s": round(rec.elapsed(alert_at), 1) if alert_at else None,
        "in_alertmanager": held is not None,
    }
    if back is not None:
        result["shift_to_rollback_s"] = round(back.at - shift_at, 1)
        if breach_at is not None:
            result["breach_to_rollback_s"] = round(back.at - breach_at, 1)
        if alert_at is not None:
            result["alert_to_rollback_s"] = round(back.at - alert_at, 1)
        late = [j.at for j in stable_bad if j.at >= back.at]
        result["bad_served_after_rollback_s"] = round(max(late) - back.at, 1) if late else 0.0
    return result
