"""Typed views of the live-watch parts of a QualitySLO and of ``spec.rollout.postPromotion``.

Parsed once from the plain dicts, defaults written once here (the CRD states the same
defaults); every problem raises :class:`SpecError` naming the field.

- ``parse_live_slo(spec) -> LiveSLO``: the objectives (``core.spec``'s parser, the same the
  canary analysis reads) and:
  ``evaluation`` (``interval`` 1m, ``window`` 10m, ``minSamples`` 20), ``errorBudget``
  (``period`` 24h, ``compliance`` 0.99: the share of the period an objective must not be
  breached), ``alerting`` (``for`` 2m, ``severityFor`` per tier, extra ``labels``),
  ``remediation`` (``settle`` 30s, ``cooldown`` 30m, ``maxAttempts`` 2, ``qualityThreshold``
  for the cache invalidation, default the objective's breach) and ``notifications[]``
  (``name``, ``secretRef {name, key=url}``, ``events`` subset of Breach, Rollback, Remediation;
  all by default).
- ``parse_post_promotion(rollout) -> PostPromotion | None``: ``window`` (1h) and ``action``
  (``Rollback`` or ``Remediate``) from ``spec.rollout.postPromotion``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..spec import Objective, SpecError, parse_quality_slo_spec
from ..timeutil import parse_duration

__all__ = [
    "NOTIFY_EVENTS",
    "AlertingPolicy",
    "BudgetPolicy",
    "EvaluationPolicy",
    "LiveSLO",
    "NotificationTarget",
    "PostPromotion",
    "RemediationPolicy",
    "parse_live_slo",
    "parse_post_promotion",
]

NOTIFY_EVENTS = frozenset({"Breach", "Rollback", "Remediation"})


@dataclass(frozen=True)
class EvaluationPolicy:
    interval_s: float = 60.0
    window_s: float = 600.0
    min_samples: int = 20


@dataclass(frozen=True)
class BudgetPolicy:
    period_s: float = 86400.0
    compliance: float = 0.99

    @property
    def allowed_breach_s(self) -> float:
        return self.period_s * (1.0 - self.compliance)


@dataclass(frozen=True)
class AlertingPolicy:
    for_s: float = 120.0
    severity_for_s: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RemediationPolicy:
    settle_s: float = 30.0
    cooldown_s: float = 1800.0
    max_attempts: int = 2
    quality_threshold: float | None = None


@dataclass(frozen=True)
class NotificationTarget:
    name: str
    secret_name: str
    secret_key: str = "url"
    events: frozenset[str] = NOTIFY_EVENTS


@dataclass(frozen=True)
class LiveSLO:
    objectives: tuple[Objective, ...]
    evaluation: EvaluationPolicy = EvaluationPolicy()
    budget: BudgetPolicy = BudgetPolicy()
    alerting: AlertingPolicy = AlertingPolicy()
    remediation: RemediationPolicy = RemediationPolicy()
    notifications: tuple[NotificationTarget, ...] = ()

    def window_s(self, objective: Objective) -> float:
        return objective.window_s or self.evaluation.window_s


@dataclass(frozen=True)
class PostPromotion:
    window_s: float = 3600.0
    action: Literal["Rollback", "Remediate"] = "Rollback"


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be an object, not {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpecError(path, f"must be a list, not {type(value).__name__}")
    return value


def _duration(d: Mapping[str, Any], key: str, path: str, default: float) -> float:
    if key not in d:
        return default
    try:
        return parse_duration(d[key])
    except ValueError as exc:
        raise SpecError(f"{path}.{key}", str(exc)) from exc


def _number(d: Mapping[str, Any], key: str, path: str, default: float, lo: float, hi: float) -> float:
    raw = d.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not lo <= raw <= hi:
        raise SpecError(f"{path}.{key}", f"must be a number in [{lo}, {hi}], not {raw!r}")
    return float(raw)


def _str(d: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    raw = d.get(key, default)
    if not isinstance(raw, str) or not raw:
        raise SpecError(f"{path}.{key}", "Required value: a non-empty string")
    return raw


def parse_live_slo(spec: Mapping[str, Any]) -> LiveSLO:
    """Parse a QualitySLO ``.spec`` for the live watch; raises :class:`SpecError`."""
    spec = _mapping(spec, "spec")
    objectives = parse_quality_slo_spec(spec).objectives
    ev = _mapping(spec.get("evaluation"), "spec.evaluation")
    evaluation = EvaluationPolicy(
        interval_s=_duration(ev, "interval", "spec.evaluation", EvaluationPolicy.interval_s),
        window_s=_duration(ev, "window", "spec.evaluation", EvaluationPolicy.window_s),
        min_samples=int(_number(ev, "minSamples", "spec.evaluation", EvaluationPolicy.min_samples, 1, 1e9)),
    )
    if evaluation.interval_s <= 0:
        raise SpecError("spec.evaluation.interval", "must be positive")
    bd = _mapping(spec.get("errorBudget"), "spec.errorBudget")
    budget = BudgetPolicy(
        period_s=_duration(bd, "period", "spec.errorBudget", BudgetPolicy.period_s),
        compliance=_number(bd, "compliance", "spec.errorBudget", BudgetPolicy.compliance, 0.0, 0.99999),
    )
    al = _mapping(spec.get("alerting"), "spec.alerting")
    sev = _mapping(al.get("severityFor"), "spec.alerting.severityFor")
    labels = _mapping(al.get("labels"), "spec.alerting.labels")
    alerting = AlertingPolicy(
        for_s=_duration(al, "for", "spec.alerting", AlertingPolicy.for_s),
        severity_for_s={k: _duration(sev, k, "spec.alerting.severityFor", 0.0) for k in sev},
        labels={str(k): str(v) for k, v in labels.items()},
    )
    rm = _mapping(spec.get("remediation"), "spec.remediation")
    threshold = rm.get("qualityThreshold")
    remediation = RemediationPolicy(
        settle_s=_duration(rm, "settle", "spec.remediation", RemediationPolicy.settle_s),
        cooldown_s=_duration(rm, "cooldown", "spec.remediation", RemediationPolicy.cooldown_s),
        max_attempts=int(
            _number(rm, "maxAttempts", "spec.remediation", RemediationPolicy.max_attempts, 1, 10)
        ),
        quality_threshold=None
        if threshold is None
        else _number(rm, "qualityThreshold", "spec.remediation", 0.0, 0.0, 1.0),
    )
    targets: list[NotificationTarget] = []
    for i, raw in enumerate(_list(spec.get("notifications"), "spec.notifications")):
        path = f"spec.notifications[{i}]"
        n = _mapping(raw, path)
        ref = _mapping(n.get("secretRef"), f"{path}.secretRef")
        events = frozenset(str(e) for e in _list(n.get("events"), f"{path}.events")) or NOTIFY_EVENTS
        if not events <= NOTIFY_EVENTS:
            raise SpecError(
                f"{path}.events", f"unknown {sorted(events - NOTIFY_EVENTS)}; allowed {sorted(NOTIFY_EVENTS)}"
            )
        targets.append(
            NotificationTarget(
                name=_str(n, "name", path),
                secret_name=_str(ref, "name", f"{path}.secretRef"),
                secret_key=_str(ref, "key", f"{path}.secretRef", "url"),
                events=events,
            )
        )
    return LiveSLO(objectives, evaluation, budget, alerting, remediation, tuple(targets))


def parse_post_promotion(rollout: Mapping[str, Any] | None) -> PostPromotion | None:
    """``spec.rollout.postPromotion`` typed; ``None`` when absent (no watch after promotion)."""
    raw = _mapping(rollout, "spec.rollout").get("postPromotion")
    if raw is None:
        return None
    path = "spec.rollout.postPromotion"
    d = _mapping(raw, path)
    action = d.get("action", PostPromotion.action)
    if action not in ("Rollback", "Remediate"):
        raise SpecError(f"{path}.action", f"must be Rollback or Remediate, not {action!r}")
    window_s = _duration(d, "window", path, PostPromotion.window_s)
    if window_s <= 0:
        raise SpecError(f"{path}.window", "must be positive")
    return PostPromotion(window_s=window_s, action=action)
