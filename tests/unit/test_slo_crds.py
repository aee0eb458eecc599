"""The CRD fields of the live quality watch: defaults as the parsers read them, validation, status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rankops.operator.core.slo.policy import (
    EvaluationPolicy,
    RemediationPolicy,
    parse_live_slo,
    parse_post_promotion,
)
from rankops.sandbox.schema import validate_crd, validate_custom_resource

ROOT = Path(__file__).resolve().parents[2]
SLO_CRD = yaml.safe_load((ROOT / "crds" / "qualityslos.yaml").read_text())
RM_CRD = yaml.safe_load((ROOT / "crds" / "rankingmodels.yaml").read_text())


def slo(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "QualitySLO",
        "metadata": {"name": "q"},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return obj


def test_crds_stay_valid() -> None:
    assert validate_crd(SLO_CRD) == [] and validate_crd(RM_CRD) == []


def test_live_watch_defaults_match_the_parser() -> None:
    stored, errors = validate_custom_resource(
        SLO_CRD, slo({"objectives": [{"name": "hits", "metric": "cache_hit_rate"}]})
    )
    assert errors == []
    spec = stored["spec"]
    assert spec["evaluation"] == {"interval": "1m", "window": "10m", "minSamples": 20}
    assert spec["remediation"] == {"settle": "30s", "cooldown": "30m", "maxAttempts": 2}
    assert spec["errorBudget"] == {"period": "24h", "compliance": 0.99}
    assert spec["alerting"] == {"for": "2m"}
    live = parse_live_slo(spec)
    assert live.evaluation == EvaluationPolicy() and live.remediation == RemediationPolicy()
    assert live == parse_live_slo({"objectives": [{"name": "hits", "metric": "cache_hit_rate"}]})


def test_new_fields_validate() -> None:
    full = {
        "objectives": [{"name": "psi", "metric": "drift_psi", "direction": "lowerIsBetter"}],
        "alerting": {"for": "30s", "severityFor": {"P0": "0s"}, "labels": {"team": "search"}},
        "notifications": [{"name": "slack", "secretRef": {"name": "hook"}, "events": ["Rollback"]}],
    }
    stored, errors = validate_custom_resource(SLO_CRD, slo(full))
    assert errors == []
    assert stored["spec"]["notifications"][0]["secretRef"] == {"name": "hook", "key": "url"}
    assert parse_live_slo(stored["spec"]).objectives[0].breach == 0.25

    bad = {
        "objectives": [{"name": "psi", "metric": "drift_psi"}],
        "remediation": {"maxAttempts": 0},
        "notifications": [{"name": "x", "secretRef": {"name": "s"}, "events": ["Lunch"]}],
    }
    text = " ".join(str(e) for e in validate_custom_resource(SLO_CRD, slo(bad))[1])
    assert "drift_psi needs direction: lowerIsBetter" in text
    assert "spec.remediation.maxAttempts" in text and "spec.notifications[0].events[0]" in text


def test_status_fields_are_kept_not_pruned() -> None:
    status = {
        "state": "Breached",
        "message": "ok",
        "models": [
            {
                "model": "m",
                "version": "1",
                "state": "Breached",
                "objectives": [
                    {
                        "name": "ndcg",
                        "value": 0.4,
                        "samples": 120,
                        "state": "Breached",
                        "severity": "P0",
                        "errorBudgetRemaining": 0.5,
                        "breaches": [{"from": "2026-03-01T12:00:00Z"}],
                    }
                ],
                "canary": {
                    "version": "2",
                    "state": "Met",
                    "objectives": [{"name": "ndcg", "value": 0.8, "samples": 40, "state": "Met"}],
                },
            }
        ],
    }
    stored, errors = validate_custom_resource(
        SLO_CRD, slo({"objectives": [{"name": "ndcg", "metric": "ndcg_at_3"}]}, status)
    )
    assert errors == [] and stored["status"] == status


def test_rankingmodel_post_promotion_and_quality_status() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": "m"},
        "spec": {
            "model": {"version": "1.0.0", "uri": "file:///m/1"},
            "serving": {"image": "img"},
            "rollout": {"analysis": {"sloRef": {"name": "q"}}, "postPromotion": {}},
        },
        "status": {
            "quality": {
                "slo": "q",
                "state": "Breached",
                "stable": {"version": "1.1.0", "uri": "file:///m/2", "healthy": False},
                "promotion": {
                    "version": "1.1.0",
                    "uri": "file:///m/2",
                    "time": "2026-03-01T12:00:00Z",
                    "previousHealthy": True,
                    "previous": {"version": "1.0.0", "uri": "file:///m/1"},
                },
                "rollback": {
                    "version": "1.0.0",
                    "uri": "file:///m/1",
                    "fromVersion": "1.1.0",
                    "generation": 2,
                    "reason": "PostPromotionBreach",
                    "message": "ndcg 0.4",
                    "time": "2026-03-01T12:10:00Z",
                },
                "remediation": {
                    "stage": "Idle",
                    "attempts": 0,
                    "steps": [
                        {
                            "step": "InvalidateCaches",
                            "time": "2026-03-01T12:00:00Z",
                            "detail": "x",
                            "outcome": "2/2",
                        }
                    ],
                },
                "restartedAt": "2026-03-01T12:01:00Z",
                "retrainRequest": {
                    "time": "2026-03-01T12:02:00Z",
                    "version": "1.1.0",
                    "reason": "StillBreaching",
                },
            }
        },
    }
    stored, errors = validate_custom_resource(RM_CRD, obj)
    assert errors == []
    assert stored["spec"]["rollout"]["postPromotion"] == {"window": "1h", "action": "Rollback"}
    assert stored["status"]["quality"] == obj["status"]["quality"]
    pp = parse_post_promotion(stored["spec"]["rollout"])
    assert pp is not None and (pp.window_s, pp.action) == (3600, "Rollback")
    obj["spec"]["rollout"]["postPromotion"] = {"action": "Panic"}
    assert any("postPromotion.action" in str(e) for e in validate_custom_resource(RM_CRD, obj)[1])
