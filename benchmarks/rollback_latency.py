"""Rollback latency of the real stack: seconds from "the canary's NDCG turns bad" to weight 0.

The stack, all on loopback and self-stopping: the sandbox API server (a thread of this
process, CRDs from ``crds/``, Deployment readiness simulated), two exporter processes
(``tests/integration/ndcg_exporter.py``, tracks stable and canary), a real Prometheus
scraping them every ``--scrape-interval`` seconds, and the operator as a subprocess
(``rankops operator run``).

Each run: a fresh RankingModel is deployed (stable 1.0.0), a rollout to 1.1.0 starts with
canary and stable equally good; the QualitySLO has, besides NDCG@3, a "hold" objective whose
query never has data, so no look can pass and the rollout sits in its first analysis step
(weight 50) while the NDCG objective is judged every look. After a few looks plus a random
phase offset the canary exporter's stream is switched to a bad mean
(``--bad-mean``, below the SLO's breach floor 0.65). The latency is measured from the
exporter's own timestamp of that switch to the first moment ``status.canaryWeight == 0`` is
seen in the emulator (polled every 20 ms). A run counts only if the rollout was under
analysis at the switch and ended RolledBack.

    python benchmarks/rollback_latency.py --runs 5

Prints every run, min/median/max, the scrape and analysis intervals, and the median in
analysis intervals (target: at most 1).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from typing import Any

from operator_stack import operator_log, operator_process  # puts this checkout on sys.path

# isort: split
from tests.integration.harness import Exporter, Prometheus, crd_manifests, wait_for
from tests.integration.manifests import ndcg_objective, quality_slo_manifest

NAMESPACE = "default"


def model_manifest(name: str, version: str, interval: float, failure_limit: int) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"version": version, "uri": f"file:///models/{name}/{version}"},
            "serving": {"image": "rankops/serving:bench", "replicas": 2},
            "rollout": {
                "steps": [{"weight": 50}, {"weight": 100}],
                "analysis": {
                    "sloRef": {"name": "ndcg"},
                    "interval": f"{int(interval * 1000)}ms",
                    "failureLimit": failure_limit,
                    "inconclusiveLimit": 50,
                },
                "progressDeadline": "60s",
            },
        },
    }


def slo_manifest(window: float, min_samples: int) -> dict[str, Any]:
    comparison = {"maxDegradation": 0.02, "alpha": 0.05, "minSamples": min_samples}
    ndcg = ndcg_objective(f"{int(window * 1000)}ms", comparison=comparison)
    # A second objective that never has data: every look is Inconclusive at best, so the
    # rollout stays in its first analysis step (no promotion) until the NDCG objective fails.
    hold = {
        "name": "hold",
        "metric": "custom",
        "query": 'rankops_bench_absent{model="$model"}',
        "target": 1.0,
        "breach": 0.0,
    }
    return quality_slo_manifest("ndcg", [ndcg, hold])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--analysis-interval", type=float, default=2.0, help="seconds (spec.rollout.analysis)"
    )
    parser.add_argument(
        "--scrape-interval", type=float, default=1.0, help="Prometheus scrape interval, seconds"
    )
    parser.add_argument("--window", type=float, default=5.0, help="QualitySLO objective window, seconds")
    parser.add_argument(
        "--failure-limit", type=int, default=1, help="Fail verdicts that trigger the rollback"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="NDCG samples per second per track")
    parser.add_argument("--good-mean", type=float, default=0.80)
    parser.add_argument("--bad-mean", type=float, default=0.30)
    parser.add_argument("--sd", type=float, default=0.05)
    parser.add_argument("--min-samples", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=60.0, help="per-run limit, seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.runs > 50:
        parser.error("--runs must be within 1..50")
    rng = random.Random(args.seed)

    from rankops.sandbox.apiserver import SandboxAPIServer

    latencies: list[float] = []
    stable, canary = (
        Exporter(
            "none",
            "0.0.0",
            track,
            mean=args.good_mean,
            sd=args.sd,
            rate=args.rate,
            seed=seed,
            max_seconds=args.runs * args.timeout + 120,
        )
        for track, seed in (("stable", 1), ("canary", 2))
    )
    prometheus: Prometheus | None = None
    log = operator_log("rollback-bench-operator-")
    try:
        prometheus = Prometheus([stable.address, canary.address], scrape_interval=args.scrape_interval)
        with SandboxAPIServer.in_thread(crds=crd_manifests(), simulate_workloads=True) as api:
            api.create(slo_manifest(args.window, args.min_samples))
            with operator_process(api.url, prometheus.url, log, NAMESPACE):
                prometheus.wait_scraped(stable.address, canary.address, timeout=30)
                print(
                    f"stack ready: scrape interval {args.scrape_interval:g}s, analysis interval "
                    f"{args.analysis_interval:g}s, window {args.window:g}s, "
                    f"failureLimit {args.failure_limit}, "
                    f"{args.rate:g} samples/s per track, NDCG {args.good_mean} -> {args.bad_mean}",
                    flush=True,
                )

                for run in range(1, args.runs + 1):
                    name = f"bench-{run}"
                    stable.set(model=name, version="1.0.0", mean=args.good_mean)
                    canary.set(model=name, version="1.1.0", mean=args.good_mean)
                    api.create(model_manifest(name, "1.0.0", args.analysis_interval, args.failure_limit))

                    def status(name: str = name) -> dict[str, Any]:
                        obj = api.get_object("rankingmodels", name, NAMESPACE) or {}
                        return dict(obj.get("status") or {})

                    wait_for(
                        lambda: status().get("phase") == "Healthy", args.timeout, 0.05, f"{name} healthy"
                    )
                    obj = api.get_object("rankingmodels", name, NAMESPACE)
                    assert obj is not None
                    obj["spec"]["model"].update(version="1.1.0", uri=f"file:///models/{name}/1.1.0")
                    api.apply_object(obj)
                    # A few looks in (all Inconclusive: too few samples to pass), then a random phase.
                    wait_for(
                        lambda: (status().get("stepLooks") or 0) >= 2 and status().get("canaryWeight") == 50,
                        args.timeout,
                        0.05,
                        f"{name} under analysis",
                    )
                    time.sleep(rng.uniform(0, args.analysis_interval))
                    before = status()
                    turned_bad = canary.set(mean=args.bad_mean)["applied_at"]
                    if before.get("phase") != "Progressing" or before.get("canaryWeight") != 50:
                        print(
                            f"run {run}: invalid, the rollout was not under analysis at the switch: {before}"
                        )
                        continue
                    deadline = time.monotonic() + args.timeout
                    seen = None
                    while time.monotonic() < deadline:
                        if status().get("canaryWeight") == 0:
                            seen = time.time()
                            break
                        time.sleep(0.02)
                    if seen is None:
                        print(f"run {run}: no rollback within {args.timeout:g}s; status {status()}")
                        continue
                    latency = seen - turned_bad
                    final = status()
                    last = (final.get("history") or [{}])[-1]
                    if final.get("phase") != "RolledBack" or last.get("outcome") != "RolledBack":
                        print(f"run {run}: invalid, weight 0 without a rollback: {final}")
                        continue
                    latencies.append(latency)
                    reason = (final.get("lastAnalysis") or {}).get("reason")
                    print(
                        f"run {run}: {latency:6.2f} s = {latency / args.analysis_interval:4.2f} "
                        f"analysis intervals  (phase {final.get('phase')}, reason {reason})",
                        flush=True,
                    )
                    api.delete_object("rankingmodels", name, NAMESPACE)
                time.sleep(0.5)  # let the emulator's garbage collector finish before it stops
    finally:
        if prometheus is not None:
            prometheus.stop()
        stable.stop()
        canary.stop()

    if not latencies:
        print(f"no run completed; operator log: {log}")
        return 1
    median = statistics.median(latencies)
    print(
        f"rollback latency over {len(latencies)} runs: min {min(latencies):.2f} s, median {median:.2f} s, "
        f"max {max(latencies):.2f} s"
    )
    print(
        f"scrape interval {args.scrape_interval:g} s, analysis interval {args.analysis_interval:g} s, "
        f"window {args.window:g} s, failureLimit {args.failure_limit}"
    )
    verdict = "meets" if median <= args.analysis_interval else "MISSES"
    print(f"median = {median / args.analysis_interval:.2f} analysis intervals ({verdict} the target of <= 1)")
    os.unlink(log)
    return 0 if len(latencies) == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
