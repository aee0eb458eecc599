"""`rankops demo`: the product doing its job, told as a story on the sandbox.

Acts (each a change a user would make with ``kubectl apply`` or a GitOps commit; the
operator does everything else):

1. ``v1``: RankingModel ``search`` at 1.0.0 becomes Healthy; held-out traffic starts.
2. ``v2``: 2.0.0 (trained longer, better) is canaried through the steps behind an HTTPRoute,
   judged on online NDCG@3 against stable, and promoted.
3. ``maint``: a MaintenanceWindow backs the stable model up (a real Backup Job), a second one
   restores that backup in a RestoreTest Job and checks the live queries for drift (a
   DriftCheck Job asking each serving pod at ``podIP:8080``); the Jobs, their verdicts and the
   backup inventory are reported.
4. ``v3``: 3.0.0 (trained on shuffled labels) is caught by the analysis during its canary
   and rolled back without anyone touching it; the spec still says 3.0.0.
5. ``v4``: 4.0.0 (weak on one query domain only) passes its canary on the everyday query mix
   and is promoted; then that domain's queries become frequent, its quality breaches the SLO,
   the alert rules ``rankops slo rules`` compiled fire in Prometheus, Alertmanager delivers
   to the operator, and the operator rolls back to 2.0.0 (:mod:`rankops.sandbox.regression_act`).

Everyday traffic is the held-out test split without the ``machine_learning`` queries (the
domain 4.0.0 is weak on); act v4 shifts it to only those, from the test and dev splits
(4.0.0 ranks them at NDCG@3 0.43, 2.0.0 at 0.81, on 7 queries).

The result is one JSON line: each act's expected and actual outcome and duration, the
rollback latencies (v3: seconds from the first request the bad canary served to the route
sending it nothing; v4: from the breach and from the alert to the rollback), the wall time,
the PNG's path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from rankops.sandbox.maint_act import play_maintenance
from rankops.sandbox.plot import write_plot
from rankops.sandbox.regression_act import play_regression
from rankops.sandbox.stack import Sandbox
from rankops.sandbox.story_waits import (
    rollout_outcome,
    route_ready,
    since,
    stable_ready,
    wait_for_outcome,
)
from rankops.sandbox.timeline import Recorder
from rankops.sandbox.traffic import TrafficGenerator, held_out_queries
from rankops.sandbox.versions import DEMO_VERSIONS, WEAK_DOMAIN, ensure_versions, query_domains

__all__ = ["ACTS", "NOT_YET", "StoryOptions", "quality_slo", "ranking_model", "run_story"]

MODEL = "search"
NAMESPACE = "default"
ACTS = ("v1", "v2", "maint", "v3", "v4")
NOT_YET: list[str] = []
SHIFT_SHARE = 1.0  # of the traffic after act v4's shift: queries of the weak domain


@dataclass(frozen=True)
class StoryOptions:
    workdir: Path
    data: Path
    models: Path
    png: Path
    rate: float = 20.0
    acts: Sequence[str] = ACTS
    live: bool = True
    act_timeout: float = 150.0


def ranking_model(version: str, uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": MODEL, "namespace": NAMESPACE},
        "spec": {
            "model": {"version": version, "uri": uri},
            "serving": {"image": "ghcr.io/rankops/serving:0.1.0", "replicas": 1},
            "rollout": {
                "steps": [{"weight": 20}, {"weight": 50}, {"weight": 100}],
                "trafficRouting": {"gatewayAPI": {"httpRoute": MODEL}},
                "analysis": {
                    "sloRef": {"name": "search-quality"},
                    "interval": "2s",
                    "failureLimit": 2,
                    "inconclusiveLimit": 20,
                },
                "progressDeadline": "120s",
                # a breach soon after a promotion rolls back to the previous healthy revision
                "postPromotion": {"window": "10m", "action": "Rollback"},
            },
        },
    }


def quality_slo(interval: str = "5s") -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "QualitySLO",
        "metadata": {"name": "search-quality", "namespace": NAMESPACE},
        "spec": {
            "objectives": [
                {
                    "name": "ndcg",
                    "metric": "ndcg_at_3",
                    "target": 0.7,
                    "breach": 0.6,
                    "window": "20s",
                    # the demo's margin: at 20 requests/s an equal canary is shown non-inferior
                    # within seconds at 0.1; at the runbook's 0.02 that takes many minutes
                    "comparison": {"maxDegradation": 0.1, "alpha": 0.05, "minSamples": 30},
                }
            ],
            "evaluation": {"interval": interval, "minSamples": 20},
            "alerting": {"for": "2s"},
        },
    }


def run_story(options: StoryOptions, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    wall = time.monotonic()
    started = time.time()
    console.print("[bold]rankops demo[/]: model versions (trained once, cached)")
    artifacts = ensure_versions(
        options.data, options.models, DEMO_VERSIONS, log=lambda m: console.print(f"  {m}")
    )
    uri = {v: f"file://{p.resolve()}" for v, p in artifacts.items()}
    acts: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"demo": "rankops", "acts": acts}
    with Sandbox(options.workdir) as sb:
        assert sb.api is not None and sb.prometheus is not None
        started = time.time()  # the timeline and the picture start with the sandbox, after training
        console.print(
            f"sandbox up: API {sb.api.url}  Prometheus {sb.prometheus.url}  entry {sb.entry.url}/{MODEL}/"
        )
        if sb.alertmanager is not None:
            receiver = f"http://127.0.0.1:{sb.alerts_port}/v1/alerts"
            console.print(f"alerting: Alertmanager {sb.alertmanager.url} delivers to {receiver}")
        domains = query_domains(options.data, "test")
        everyday = held_out_queries(options.data, keep=lambda q: domains.get(q) != WEAK_DOMAIN)
        # the shifted mix: that domain's queries of both held-out splits (4.0.0 trained on neither)
        dev_domains = query_domains(options.data, "dev")
        weak = held_out_queries(options.data, keep=lambda q: domains.get(q) == WEAK_DOMAIN)
        weak += held_out_queries(options.data, "dev", keep=lambda q: dev_domains.get(q) == WEAK_DOMAIN)
        mixes = {"everyday": everyday, "shifted": _mix(weak, everyday, SHIFT_SHARE)}
        traffic = TrafficGenerator(f"{sb.entry.url}/{MODEL}", everyday, rate=options.rate)
        alerts_from = (sb.prometheus.url, sb.alertmanager.url if sb.alertmanager else None)
        recorder = Recorder(sb.api, MODEL, NAMESPACE, traffic=traffic, console=console, live=options.live)
        recorder.alerts_from = alerts_from
        with recorder as rec:
            rec.start = started
            try:
                _play(options, sb, rec, traffic, uri, acts, mixes)
            finally:
                traffic.stop()
        end = time.time()
        series = write_plot(
            options.png,
            start=started,
            end=end,
            judged=traffic.judged,
            samples=rec.samples,
            marks=rec.marks,
            title="rankops demo: search (HTTPRoute canary, judged on online NDCG@3)",
        )
        summary["requests"] = {"sent": traffic.sent, "judged": len(traffic.judged), "errors": traffic.errors}
        summary["history"] = [
            {k: h.get(k) for k in ("version", "outcome", "reason")} for h in rec.status().get("history") or []
        ]
        summary["series"] = series["lines"]
        final = sb.api.get_object("rankingmodels", MODEL, NAMESPACE) or {}
        st = final.get("status") or {}
        summary["final"] = {
            "phase": st.get("phase"),
            "stableVersion": st.get("stableVersion"),
            "canaryWeight": st.get("canaryWeight"),
            "specVersion": ((final.get("spec") or {}).get("model") or {}).get("version"),
        }
        summary["operator_alert_evaluations"] = _alert_evaluations(sb.workdir / "operator.log")
    summary["not_yet"] = NOT_YET
    for line in NOT_YET:
        console.print(f"[dim]not yet:[/] {line}")
    console.print(f"picture: {options.png} (series in {options.png.with_suffix('.json')})")
    summary["ok"] = all(a["outcome"] == a["expected"] for a in acts)
    summary["wall_s"] = round(time.monotonic() - wall, 1)
    summary["png"] = str(options.png)
    return summary


def _play(
    options: StoryOptions,
    sb: Sandbox,
    rec: Recorder,
    traffic: TrafficGenerator,
    uri: dict[str, str],
    acts: list[dict[str, Any]],
    mixes: dict[str, list[tuple[str, dict[str, int]]]],
) -> None:
    sb.apply(quality_slo())
    if "v1" in options.acts:
        rec.act = "act 1: v1 becomes stable"
        rec.mark("v1 1.0.0")
        t0 = time.monotonic()
        sb.apply(ranking_model("1.0.0", uri["1.0.0"]))
        loaded = sb.sync_slo_rules()  # `rankops slo rules` into the sandbox Prometheus
        if loaded:
            rec.say(f"QualitySLO {', '.join(loaded)}: alert rules (rankops slo rules) loaded into Prometheus")
        outcome = wait_for_outcome(
            rec,
            lambda st: "Healthy" if st.get("phase") == "Healthy" and route_ready(sb, MODEL) else None,
            options.act_timeout,
        )
        acts.append({"act": "v1", "expected": "Healthy", "outcome": outcome, "seconds": since(t0)})
        traffic.start()
        time.sleep(4)  # a baseline of judged stable traffic before the first change
    for act, version, expected, about in (
        ("v2", "2.0.0", "Promoted", "v2 2.0.0 (better) canaried"),
        ("maint", "", "Succeeded", ""),
        ("v3", "3.0.0", "RolledBack", "v3 3.0.0 (shuffled labels) canaried"),
        ("v4", "4.0.0", "RolledBackAfterPromotion", f"v4 4.0.0 (weak on {WEAK_DOMAIN}) canaried"),
    ):
        if act not in options.acts:
            continue
        if act == "maint":
            rec.act = "act: maintenance windows (Backup; RestoreTest and DriftCheck)"
            acts.append(
                play_maintenance(sb, rec, NAMESPACE, MODEL, options.workdir / "backups", options.act_timeout)
            )
            time.sleep(3)  # apart on the timeline from the next act's mark
            continue
        if act == "v4":
            acts.append(_play_v4(options, sb, rec, traffic, uri, mixes, about))
            continue
        rec.act = f"act: {about}"
        rec.mark(about)
        t0 = time.monotonic()
        applied = time.time()
        sb.apply(ranking_model(version, uri[version]))
        outcome = wait_for_outcome(rec, rollout_outcome(version), options.act_timeout)
        time.sleep(1.0)  # the Events of the decision are posted just after the status
        rec.sample()
        result: dict[str, Any] = {"act": act, "expected": expected, "outcome": outcome, "seconds": since(t0)}
        if outcome == "RolledBack":
            result.update(_rollback_latency(rec, traffic, version, applied))
        previous = rec.samples[0].stable if rec.samples else "-"
        previous = next((s.stable for s in reversed(rec.samples) if s.at < applied), previous)
        result["events"] = sorted(set(rec.reasons(applied)))
        acts.append(result)
        if outcome == "Promoted":  # let the stable Deployment finish rolling to the new version
            wait_for_outcome(
                rec,
                lambda st: "ready" if route_ready(sb, MODEL) and stable_ready(sb, MODEL, NAMESPACE) else None,
                60,
            )
            time.sleep(1)
            result.update(_old_version_after_promotion(rec, traffic, previous, version, applied))
        time.sleep(3)


def _mix(
    weak: list[tuple[str, dict[str, int]]], rest: list[tuple[str, dict[str, int]]], share: float
) -> list[tuple[str, dict[str, int]]]:
    """A query list drawing ``weak`` queries with probability ``share``, ``rest`` otherwise."""
    if share >= 1.0:
        return list(weak)
    copies = max(1, round(share / (1 - share) * len(rest) / len(weak)))
    return weak * copies + rest


def _play_v4(
    options: StoryOptions,
    sb: Sandbox,
    rec: Recorder,
    traffic: TrafficGenerator,
    uri: dict[str, str],
    mixes: dict[str, list[tuple[str, dict[str, int]]]],
    about: str,
) -> dict[str, Any]:
    rec.act = f"act: {about}"
    # GitOps commit: the SLO's own timer steps back to 10 min; only an alert makes the operator look sooner
    sb.apply(quality_slo(interval="10m"))
    rec.say("QualitySLO search-quality: evaluation interval 10m (from now on an alert wakes the operator)")
    sb.sync_slo_rules()
    rec.mark(about)
    result = play_regression(
        sb,
        rec,
        traffic,
        apply_model=lambda: sb.apply(ranking_model("4.0.0", uri["4.0.0"])),
        shifted=mixes["shifted"],
        shift_label=f"traffic: {round(SHIFT_SHARE * 100)}% {WEAK_DOMAIN} queries",
        version="4.0.0",
        previous="2.0.0",
        model=MODEL,
        namespace=NAMESPACE,
        timeout=options.act_timeout,
    )
    time.sleep(2)
    return result


def _alert_evaluations(log: Path) -> int:
    """How often the operator evaluated the story's model because Alertmanager told it to."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if f"for {NAMESPACE}/{MODEL}: evaluating now" in line)


def _old_version_after_promotion(
    rec: Recorder, traffic: TrafficGenerator, old: str, new: str, applied: float
) -> dict[str, Any]:
    """How long users still got the old version after the promotion (0 when the switch waits
    until the stable track serves the new one)."""
    promoted = rec.first(lambda s: s.stable == new, after=applied)
    if promoted is None:
        return {}
    late = [j for j in traffic.judged if j.at >= promoted.at and j.version == old]
    return {
        "old_version_served_after_promotion_s": round(max(j.at for j in late) - promoted.at, 1)
        if late
        else 0.0,
        "old_version_requests_after_promotion": len(late),
    }


def _rollback_latency(
    rec: Recorder, traffic: TrafficGenerator, version: str, applied: float
) -> dict[str, Any]:
    served = next((j.at for j in traffic.judged if j.version == version and j.at >= applied), None)
    back = rec.first(lambda s: s.phase == "RolledBack" and s.weight == 0, after=applied)
    out: dict[str, Any] = {}
    if served is not None and back is not None:
        out["rollback_latency_s"] = round(back.at - served, 1)  # first bad request served -> no traffic
    if back is not None:
        out["rollback_after_apply_s"] = round(back.at - applied, 1)
    out["bad_requests_served"] = sum(1 for j in traffic.judged if j.version == version and j.at >= applied)
    return out
