"""Alert rules compiled from a QualitySLO: shape, labels, and what Prometheus' own promtool says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rankops.operator.core.slo.alert_rules import (
    BREACH_ALERT,
    SEVERITY_ALERT,
    prometheus_rule,
    rule_file,
    rule_group,
)
from rankops.operator.core.slo.objectives import DEFAULT_OBJECTIVES
from rankops.operator.core.slo.policy import LiveSLO, parse_live_slo

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) not installed")

RUNBOOK = parse_live_slo(
    {
        "objectives": [
            {
                "name": "ndcg",
                "metric": "ndcg_at_3",
                "window": "1m",
                "severityTiers": [
                    {"name": "P0", "below": 0.5},
                    {"name": "P1", "below": 0.6},
                    {"name": "P2", "below": 0.7},
                ],
            },
            {
                "name": "errors",
                "metric": "error_rate",
                "target": 0.001,
                "breach": 0.01,
                "direction": "lowerIsBetter",
            },
        ],
        "evaluation": {"minSamples": 10},
        "alerting": {"for": "1m", "severityFor": {"P0": "0s"}, "labels": {"team": "search"}},
    }
)


def test_rules_carry_the_receiver_labels_and_for_durations() -> None:
    group = rule_group("search-quality", "prod", RUNBOOK, ["search"])
    assert group["name"] == "rankops-prod-search-quality"
    rules = group["rules"]
    assert [(r["alert"], r["labels"]["severity"], r["for"]) for r in rules] == [
        (BREACH_ALERT, "breach", "1m"),
        (SEVERITY_ALERT, "P0", "0s"),
        (SEVERITY_ALERT, "P1", "1m"),
        (SEVERITY_ALERT, "P2", "1m"),
        (BREACH_ALERT, "breach", "1m"),
    ]
    for r in rules:
        assert r["labels"]["namespace"] == "prod" and r["labels"]["team"] == "search"
        assert r["labels"]["slo"] == "search-quality"
        assert '"rankingmodel", "$1", "model"' in r["expr"]
        assert 'model=~"search"' in r["expr"]
    assert "< 0.65" in rules[0]["expr"] and ">= 10" in rules[0]["expr"]  # quiet models are not breaches
    assert "> 0.01" in rules[4]["expr"]


def test_prometheus_rule_object() -> None:
    group = rule_group("q", "prod", RUNBOOK)
    owner = {"apiVersion": "rankops.dev/v1alpha1", "kind": "QualitySLO", "name": "q", "uid": "u1"}
    obj = prometheus_rule("q", "prod", group, owner)
    assert obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PrometheusRule"
    assert obj["metadata"]["name"] == "rankops-slo-q" and obj["metadata"]["ownerReferences"] == [owner]
    assert obj["spec"]["groups"] == [group]


def _write(tmp_path: Path, slo: LiveSLO, models: list[str] | None = None) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_file([rule_group("q", "prod", slo, models)]), sort_keys=False))
    return path


@needs_promtool
def test_promtool_accepts_every_default_objective(tmp_path: Path) -> None:
    slo = LiveSLO(objectives=DEFAULT_OBJECTIVES)
    path = _write(tmp_path, slo, ["search", "ads.v2"])
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rule_group('q', 'prod', slo)['rules'])} rules found" in done.stdout


@needs_promtool
def test_promtool_rejects_a_broken_custom_query(tmp_path: Path) -> None:
    slo = parse_live_slo(
        {
            "objectives": [
                {"name": "c", "metric": "custom", "query": "sum by (model (x)", "target": 1, "breach": 0}
            ]
        }
    )
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(_write(tmp_path, slo))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0  # the check above can fail: it is not a rubber stamp


@needs_promtool
def test_rules_fire_with_the_right_labels_on_a_breaching_series(tmp_path: Path) -> None:
    """promtool's rule unit tests: per-request NDCG@3 of 0.4 for model `search` fires breach and
    P0 (not `quiet`, whose 0.4 rests on too few samples); a healthy 0.9 fires nothing."""
    rules = _write(tmp_path, RUNBOOK, ["search", "quiet", "healthy"])
    ident = 'model="{m}",version="1.0.0",track="stable"'
    # feedback per minute: search 60 at 0.4, quiet 2 at 0.4, healthy 60 at 0.9
    series = []
    for m, per_min, mean in (("search", 60, 0.4), ("quiet", 2, 0.4), ("healthy", 60, 0.9)):
        labels = ident.format(m=m)
        series.append({"series": f"rankops_ndcg_at_3_count{{{labels}}}", "values": f"0+{per_min}x10"})
        series.append({"series": f"rankops_ndcg_at_3_sum{{{labels}}}", "values": f"0+{per_min * mean}x10"})
    common = {"namespace": "prod", "slo": "q", "objective": "ndcg", "team": "search"}
    series_labels = {"model": "search", "rankingmodel": "search", "version": "1.0.0", "track": "stable"}
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "3m",
                        "alertname": BREACH_ALERT,
                        "exp_alerts": [
                            {
                                "exp_labels": {**common, **series_labels, "severity": "breach"},
                                "exp_annotations": {
                                    "summary": "search (stable 1.0.0): ndcg is 0.4, "
                                    "below the breach threshold 0.65",
                                    "description": "QualitySLO objective ndcg (ndcg_at_3) below the breach "
                                    "threshold 0.65 for 1m.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "3m",
                        "alertname": SEVERITY_ALERT,
                        # P0 (for 0s), P1 and P2 (for 1m) all hold at 0.4
                        "exp_alerts": [
                            {
                                "exp_labels": {**common, **series_labels, "severity": tier},
                                "exp_annotations": {
                                    "summary": f"search (stable 1.0.0): ndcg is 0.4, {tier}: below {bound}",
                                    "description": f"QualitySLO objective ndcg (ndcg_at_3) {tier}: "
                                    f"below {bound} for {'0s' if tier == 'P0' else '1m'}.",
                                },
                            }
                            for tier, bound in (("P0", 0.5), ("P1", 0.6), ("P2", 0.7))
                        ],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_grouped_queries_evaluate_per_model_in_prometheus(tmp_path: Path) -> None:
    """Prometheus' engine (promtool promql_expr_test) evaluates each default objective's one query
    into one value per (model, version, track): error rate 0 without any 5xx series, the hit
    share, p95 from buckets, the largest PSI."""
    from rankops.operator.core.slo.objectives import default_objective, grouped_queries

    def ident(m: str) -> str:
        return f'model="{m}",version="1",track="stable"'

    a, b = ident("a"), ident("b")
    series = [
        # 10 requests a minute each; b answers 1 in 10 with a 500, a never does
        {"series": f'rankops_requests_total{{{a},code="200"}}', "values": "0+10x10"},
        {"series": f'rankops_requests_total{{{b},code="200"}}', "values": "0+9x10"},
        {"series": f'rankops_requests_total{{{b},code="500"}}', "values": "0+1x10"},
        {"series": f'rankops_cache_requests_total{{{a},result="hit"}}', "values": "0+8x10"},
        {"series": f'rankops_cache_requests_total{{{a},result="miss"}}', "values": "0+2x10"},
        {"series": f'rankops_drift_psi{{{a},feature="length"}}', "values": "0.05x10"},
        {"series": f'rankops_drift_psi{{{a},feature="terms"}}', "values": "0.3x10"},
        {"series": f'rankops_golden_ndcg_at_3{{{a},pod="p1"}}', "values": "0.8x10"},
        {"series": f'rankops_golden_ndcg_at_3{{{a},pod="p2"}}', "values": "0.6x10"},
    ]
    # every request of a under 0.25 s, of b between 1 and 2.5 s
    for le, a_rate, b_rate in (("0.25", 10, 0), ("1", 10, 0), ("2.5", 10, 10), ("+Inf", 10, 10)):
        series.append(
            {
                "series": f'rankops_request_duration_seconds_bucket{{{a},le="{le}"}}',
                "values": f"0+{a_rate}x10",
            }
        )
        series.append(
            {
                "series": f'rankops_request_duration_seconds_bucket{{{b},le="{le}"}}',
                "values": f"0+{b_rate}x10",
            }
        )

    def expect(metric: str, values: dict[str, float], compare: str = "") -> dict[str, object]:
        q = grouped_queries(default_objective(metric), ["a", "b"], 300)
        return {
            "expr": f"{q.value} {compare}".strip(),
            "eval_time": "6m",
            "exp_samples": [{"labels": f"{{{ident(m)}}}", "value": v} for m, v in sorted(values.items())],
        }

    tests = {
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    expect("error_rate", {"a": 0.0, "b": 0.1}),
                    expect("cache_hit_rate", {"a": 0.8}),
                    expect("drift_psi", {"a": 0.3}),
                    expect("golden_ndcg_at_3", {"a": 0.7}),
                    # p95 interpolated inside the buckets: a about 0.24 s, b about 2.4 s, against the 1 s KPI
                    expect("latency_p95", {"a": 0, "b": 1}, "> bool 1"),
                ],
            }
        ]
    }
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_canary_track_queries_of_the_new_metrics_evaluate(tmp_path: Path) -> None:
    """The canary analysis reads cache hit rate and drift per track too (core.promql)."""
    from rankops.operator.core.promql import objective_queries
    from rankops.operator.core.slo.objectives import default_objective

    labels = 'model="a",version="1",track="canary"'
    series = [
        {"series": f'rankops_cache_requests_total{{{labels},result="miss"}}', "values": "0+4x10"},
        {"series": f'rankops_drift_psi{{{labels},feature="length"}}', "values": "0.5x10"},
        {"series": f'rankops_drift_psi{{{labels},feature="terms"}}', "values": "0.25x10"},
    ]

    def value(metric: str) -> str:
        q = objective_queries(default_objective(metric), model="a", track="canary", version="1", window_s=300)
        assert q.kind == "value" and q.value is not None
        return q.value

    tests = {
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    # lookups but not a single hit: a hit rate of 0, not no data
                    {
                        "expr": value("cache_hit_rate"),
                        "eval_time": "6m",
                        "exp_samples": [{"labels": "{}", "value": 0}],
                    },
                    {
                        "expr": value("drift_psi"),
                        "eval_time": "6m",
                        "exp_samples": [{"labels": "{}", "value": 0.5}],
                    },
                ],
            }
        ]
    }
    test_file = tmp_path / "tests.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
