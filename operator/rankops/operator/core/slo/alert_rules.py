"""A QualitySLO compiled into Prometheus alerting rules. Pure: dicts out, YAML is the shell's.

``rule_group(name, namespace, slo, models=None) -> dict``: one rule group (``rankops-<ns>-<name>``)
with, per objective,

- ``RankopsSLOBreach`` (``severity: breach``): the value beyond ``breach`` for
  ``alerting.for``, only where at least ``evaluation.minSamples`` samples stand behind it (a
  quiet model is NoData, not a breach);
- ``RankopsSLOSeverity`` per severity tier (``severity: P0`` …), ``for`` from
  ``alerting.severityFor`` (else ``alerting.for``).

Every alert is labelled ``rankingmodel`` (from the series' ``model``), ``namespace`` (the
SLO's), ``severity``, ``slo``, ``objective``, keeps ``version`` and ``track``, and carries
``alerting.labels``. Those labels are what the operator's receiver (``POST /v1/alerts``) keys
on. The expressions are the live watch's own grouped queries, so an alert and the
controller's status always mean the same thing.

``prometheus_rule(name, namespace, group, owner=None) -> dict``: the same group as a
``monitoring.coreos.com/v1`` ``PrometheusRule`` named ``rankops-slo-<name>``.
``rule_file(groups) -> dict``: a plain rule file (``{"groups": [...]}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..spec import Objective
from ..timeutil import format_duration
from .objectives import GROUP_LABELS, grouped_queries
from .policy import LiveSLO

__all__ = ["BREACH_ALERT", "SEVERITY_ALERT", "prometheus_rule", "rule_file", "rule_group"]

BREACH_ALERT = "RankopsSLOBreach"
SEVERITY_ALERT = "RankopsSLOSeverity"
_ON = f"on ({', '.join(GROUP_LABELS)})"


def _number(value: float) -> str:
    return repr(float(value))


def _guarded(condition: str, samples: str | None, min_samples: int) -> str:
    if samples is None:
        return condition
    return f"({condition}) and {_ON} ({samples} >= {min_samples})"


def _labelled(expr: str) -> str:
    return f'label_replace({expr}, "rankingmodel", "$1", "model", "(.+)")'


def _rule(
    alert: str,
    expr: str,
    for_s: float,
    labels: Mapping[str, str],
    objective: Objective,
    threshold: str,
) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": format_duration(for_s),
        "labels": dict(labels),
        "annotations": {
            "summary": f"{{{{ $labels.rankingmodel }}}} ({{{{ $labels.track }}}} {{{{ $labels.version }}}}): "
            f'{objective.name} is {{{{ $value | printf "%.4g" }}}}, {threshold}',
            "description": f"QualitySLO objective {objective.name} ({objective.metric}) {threshold} "
            f"for {format_duration(for_s)}.",
        },
    }


def rule_group(
    name: str, namespace: str, slo: LiveSLO, models: Sequence[str] | None = None
) -> dict[str, Any]:
    """The alerting rules of QualitySLO ``namespace/name`` for ``models`` (``None``: every model)."""
    rules: list[dict[str, Any]] = []
    for objective in slo.objectives:
        q = grouped_queries(objective, models, slo.window_s(objective), None)
        op, word = ("<", "below") if objective.higher_is_better else (">", "above")
        base = {
            **slo.alerting.labels,
            "namespace": namespace,
            "slo": name,
            "objective": objective.name,
        }
        breach = _guarded(
            f"{q.value} {op} {_number(objective.breach)}", q.samples, slo.evaluation.min_samples
        )
        rules.append(
            _rule(
                BREACH_ALERT,
                _labelled(breach),
                slo.alerting.for_s,
                {**base, "severity": "breach"},
                objective,
                f"{word} the breach threshold {objective.breach}",
            )
        )
        for tier in objective.severity_tiers:
            tier_op, bound = ("<", tier.below) if tier.below is not None else (">", tier.above)
            assert bound is not None
            cond = _guarded(f"{q.value} {tier_op} {_number(bound)}", q.samples, slo.evaluation.min_samples)
            rules.append(
                _rule(
                    SEVERITY_ALERT,
                    _labelled(cond),
                    slo.alerting.severity_for_s.get(tier.name, slo.alerting.for_s),
                    {**base, "severity": tier.name},
                    objective,
                    f"{tier.name}: {'below' if tier_op == '<' else 'above'} {bound}",
                )
            )
    return {"name": f"rankops-{namespace}-{name}", "rules": rules}


def rule_file(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"groups": [dict(g) for g in groups]}


def prometheus_rule(
    name: str, namespace: str, group: Mapping[str, Any], owner: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": f"rankops-slo-{name}",
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "rankops", "rankops.dev/qualityslo": name},
    }
    if owner:
        metadata["ownerReferences"] = [dict(owner)]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": [dict(group)]},
    }
