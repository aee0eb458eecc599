"""`rankops demo`: the product doing its job, told as a story on the sandbox.

Acts (each a change a user would make with ``kubectl apply`` or a GitOps commit; the
operator does everything else):

1. ``v1``: RankingModel ``search`` at 1.0.0 becomes Healthy; held-out traffic starts.
2. ``v2``: 2.0.0 (trained longer, better) is canaried through the steps behind an HTTPRoute,
   judged on online NDCG@3 against stable, and promoted.
3. ``maint``: a MaintenanceWindow backs the stable model up (a real Backup Job), a second one
   restores that backup in a RestoreTest Job; the Jobs and the backup inventory are reported.
4. ``v3``: 3.0.0 (trained on shuffled labels) is caught by the analysis during its canary
   and rolled back without anyone touching it; the spec still says 3.0.0.

Not yet (the summary says so): v4 degraded after promotion and rolled back on an
Alertmanager alert, and DriftCheck in the maintenance act.

The result is one JSON line: each act's expected and actual outcome and duration, the
rollback latency (seconds from the first request the bad canary served to the route
sending it nothing), the wall time, the PNG's path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from rankops.sandbox.maint_act import play_maintenance
from rankops.sandbox.plot import write_plot
from rankops.sandbox.stack import Sandbox
from rankops.sandbox.timeline import Recorder
from rankops.sandbox.traffic import TrafficGenerator, held_out_queries
from rankops.sandbox.versions import DEMO_VERSIONS, ensure_versions

__all__ = ["NOT_YET", "StoryOptions", "quality_slo", "ranking_model", "run_story"]

MODEL = "search"
NAMESPACE = "default"
NOT_YET = [
    "v4: degraded after promotion, rolled back on an Alertmanager alert (not yet wired into the demo)",
    "DriftCheck in the maintenance act (its Job asks pods on their container port;"
    " sandbox pods listen on remapped loopback ports)",
]


@dataclass(frozen=True)
class StoryOptions:
    workdir: Path
    data: Path
    models: Path
    png: Path
    rate: float = 20.0
    acts: Sequence[str] = ("v1", "v2", "maint", "v3")
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
            },
        },
    }


def quality_slo() -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "QualitySLO",
        "metadata": {"name": "search-quality", "namespace": NAMESPACE},
        "spec": {
            "objectives": [
                {
                    "name": "ndcg",
                    "metric": "ndcg_at_3",
                    "target": 0.5,
                    "breach": 0.3,
                    "window": "20s",
                    "comparison": {"maxDegradation": 0.05, "alpha": 0.05, "minSamples": 30},
                }
            ]
        },
    }


def _wait(rec: Recorder, done: Callable[[dict[str, Any]], str | None], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = done(rec.status())
        if outcome:
            return outcome
        time.sleep(0.2)
    return f"TimedOut({rec.status().get('phase')})"


def _rollout_outcome(version: str) -> Callable[[dict[str, Any]], str | None]:
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
        traffic = TrafficGenerator(
            f"{sb.entry.url}/{MODEL}", held_out_queries(options.data), rate=options.rate
        )
        with Recorder(sb.api, MODEL, NAMESPACE, traffic=traffic, console=console, live=options.live) as rec:
            rec.start = started
            try:
                _play(options, sb, rec, traffic, uri, acts)
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
) -> None:
    sb.apply(quality_slo())
    if "v1" in options.acts:
        rec.act = "act 1: v1 becomes stable"
        rec.mark("v1 1.0.0")
        t0 = time.monotonic()
        sb.apply(ranking_model("1.0.0", uri["1.0.0"]))
        outcome = _wait(
            rec,
            lambda st: "Healthy" if st.get("phase") == "Healthy" and _route_ready(sb) else None,
            options.act_timeout,
        )
        acts.append({"act": "v1", "expected": "Healthy", "outcome": outcome, "seconds": _since(t0)})
        traffic.start()
        time.sleep(4)  # a baseline of judged stable traffic before the first change
    for act, version, expected, about in (
        ("v2", "2.0.0", "Promoted", "v2 2.0.0 (better) canaried"),
        ("maint", "", "Succeeded", ""),
        ("v3", "3.0.0", "RolledBack", "v3 3.0.0 (shuffled labels) canaried"),
    ):
        if act not in options.acts:
            continue
        if act == "maint":
            rec.act = "act: maintenance windows (Backup, RestoreTest)"
            acts.append(
                play_maintenance(sb, rec, NAMESPACE, options.workdir / "backups", options.act_timeout)
            )
            time.sleep(3)  # apart on the timeline from the next act's mark
            continue
        rec.act = f"act: {about}"
        rec.mark(about)
        t0 = time.monotonic()
        applied = time.time()
        sb.apply(ranking_model(version, uri[version]))
        outcome = _wait(rec, _rollout_outcome(version), options.act_timeout)
        time.sleep(1.0)  # the Events of the decision are posted just after the status
        rec.sample()
        result: dict[str, Any] = {"act": act, "expected": expected, "outcome": outcome, "seconds": _since(t0)}
        if outcome == "RolledBack":
            result.update(_rollback_latency(rec, traffic, version, applied))
        previous = rec.samples[0].stable if rec.samples else "-"
        previous = next((s.stable for s in reversed(rec.samples) if s.at < applied), previous)
        result["events"] = sorted(set(rec.reasons(applied)))
        acts.append(result)
        if outcome == "Promoted":  # let the stable Deployment finish rolling to the new version
            _wait(rec, lambda st: "ready" if _route_ready(sb) and _stable_ready(sb) else None, 60)
            time.sleep(1)
            result.update(_old_version_after_promotion(rec, traffic, previous, version, applied))
        time.sleep(3)


def _since(t0: float) -> float:
    return round(time.monotonic() - t0, 1)


def _route_ready(sb: Sandbox) -> bool:
    return bool(sb.entry.choose(MODEL))


def _stable_ready(sb: Sandbox) -> bool:
    assert sb.api is not None
    d = sb.api.get_object("deployments", f"{MODEL}-stable", NAMESPACE) or {}
    spec, status = d.get("spec") or {}, d.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        int(status.get("observedGeneration", 0)) >= int(d.get("metadata", {}).get("generation", 1))
        and int(status.get("updatedReplicas", 0)) >= want
        and int(status.get("readyReplicas", 0)) >= want
        and int(status.get("replicas", 0)) == want
    )


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
