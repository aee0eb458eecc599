"""One evaluation of a QualitySLO: query results in, per-model objective states and status out.
Pure.

``evaluate(live, targets, results, previous, now) -> Evaluation``

- ``targets``: the RankingModels using the SLO (name, stable version, canary version while a
  rollout runs);
- ``results``: per objective name, the grouped query answers ``{(model, version, track):
  (value, samples)}``, or ``None`` when Prometheus could not answer that objective (every
  model is NoData for it, and nothing acts on NoData);
- ``previous``: the QualitySLO's last ``status`` (breach spans for the error budget, states
  for change detection).

``Evaluation.status()`` is the QualitySLO status; ``Evaluation.changes`` lists the
(model, objective, before, after) state changes, which are what Events are posted for (not
every evaluation); ``ModelEvaluation.observation()`` is what the ladder and the
post-promotion decision look at: the stable track's worst objective, a breach that acts at
once ranking before one that only records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..timeutil import format_time
from .budget import BreachSpans, record, remaining
from .ladder import Observation
from .policy import LiveSLO
from .state import STATES, State, acts_at_once, assess, worst

__all__ = ["Evaluation", "ModelEvaluation", "ModelTarget", "ObjectiveResult", "SeriesKey", "evaluate"]

SeriesKey = tuple[str, str, str]  # model, version, track
Series = Mapping[SeriesKey, tuple[float | None, float | None]]
_TIER_ORDER = ("P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9")


@dataclass(frozen=True)
class ModelTarget:
    name: str
    stable_version: str
    canary_version: str | None = None


@dataclass(frozen=True)
class ObjectiveResult:
    name: str
    value: float | None
    samples: float | None
    state: State
    severity: str | None = None
    budget_remaining: float | None = None
    spans: BreachSpans = field(default_factory=BreachSpans)

    def to_status(self, with_budget: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "state": self.state}
        if self.value is not None:
            out["value"] = round(self.value, 6)
        if self.samples is not None:
            out["samples"] = self.samples
        if self.severity:
            out["severity"] = self.severity
        if with_budget:
            if self.budget_remaining is not None:
                out["errorBudgetRemaining"] = round(self.budget_remaining, 4)
            if self.spans.spans:
                out["breaches"] = self.spans.to_status()
        return out


def _rank(o: ObjectiveResult) -> tuple[int, int, int]:
    severity = _TIER_ORDER.index(o.severity) if o.severity in _TIER_ORDER else len(_TIER_ORDER)
    urgent = 0 if o.state == "Breached" and acts_at_once(o.severity) else 1
    return STATES.index(o.state), urgent, severity


@dataclass(frozen=True)
class ModelEvaluation:
    model: str
    version: str
    objectives: tuple[ObjectiveResult, ...]
    canary_version: str | None = None
    canary: tuple[ObjectiveResult, ...] = ()

    @property
    def state(self) -> State:
        return worst([o.state for o in self.objectives])

    @property
    def healthy(self) -> bool | None:
        """True when no objective breaches and all have data; None when some lack data."""
        if self.state == "Breached":
            return False
        return None if self.state == "NoData" else True

    def deciding(self) -> ObjectiveResult | None:
        return min(self.objectives, key=_rank) if self.objectives else None

    def observation(self) -> Observation:
        o = self.deciding()
        if o is None:
            return Observation("NoData")
        return Observation(o.state, o.name, o.value, o.severity)

    def to_status(self, now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "state": self.state,
            "lastEvaluationTime": format_time(now),
            "objectives": [o.to_status() for o in self.objectives],
        }
        if self.canary_version:
            out["canary"] = {
                "version": self.canary_version,
                "state": worst([o.state for o in self.canary]),
                "objectives": [o.to_status(with_budget=False) for o in self.canary],
            }
        return out


@dataclass(frozen=True)
class Evaluation:
    now: datetime
    models: tuple[ModelEvaluation, ...]
    changes: tuple[tuple[str, str, str | None, State], ...]
    message: str = ""

    @property
    def state(self) -> State:
        return worst([m.state for m in self.models])

    def model(self, name: str) -> ModelEvaluation | None:
        return next((m for m in self.models if m.model == name), None)

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "lastEvaluationTime": format_time(self.now),
            "message": self.message,
            "models": [m.to_status(self.now) for m in self.models],
        }


def _previous(previous: Mapping[str, Any] | None) -> dict[str, dict[str, Mapping[str, Any]]]:
    """``{model: {objective: status entry}}`` of the last evaluation."""
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for entry in (previous or {}).get("models") or []:
        if isinstance(entry, Mapping) and entry.get("model"):
            out[str(entry["model"])] = {
                str(o.get("name")): o for o in entry.get("objectives") or [] if isinstance(o, Mapping)
            }
    return out


def evaluate(
    live: LiveSLO,
    targets: Sequence[ModelTarget],
    results: Mapping[str, Series | None],
    previous: Mapping[str, Any] | None,
    now: datetime,
    message: str = "",
) -> Evaluation:
    before = _previous(previous)
    min_samples = live.evaluation.min_samples
    models: list[ModelEvaluation] = []
    changes: list[tuple[str, str, str | None, State]] = []

    def result_for(objective_name: str, key: SeriesKey) -> tuple[float | None, float | None]:
        series = results.get(objective_name)
        return (None, None) if series is None else series.get(key, (None, None))

    for target in sorted(targets, key=lambda t: t.name):
        stable: list[ObjectiveResult] = []
        canary: list[ObjectiveResult] = []
        last = before.get(target.name, {})
        for objective in live.objectives:
            value, samples = result_for(objective.name, (target.name, target.stable_version, "stable"))
            state = assess(objective, value, samples, min_samples)
            spans = BreachSpans.from_status((last.get(objective.name) or {}).get("breaches"))
            spans = record(spans, now, state.state == "Breached", live.budget.period_s)
            stable.append(
                ObjectiveResult(
                    objective.name,
                    value,
                    samples,
                    state.state,
                    state.severity,
                    remaining(spans, now, live.budget),
                    spans,
                )
            )
            old = (last.get(objective.name) or {}).get("state")
            if old != state.state:
                changes.append((target.name, objective.name, old, state.state))
            if target.canary_version:
                cv, cs = result_for(objective.name, (target.name, target.canary_version, "canary"))
                cstate = assess(objective, cv, cs, min_samples)
                canary.append(ObjectiveResult(objective.name, cv, cs, cstate.state, cstate.severity))
        models.append(
            ModelEvaluation(
                target.name, target.stable_version, tuple(stable), target.canary_version, tuple(canary)
            )
        )
    return Evaluation(now, tuple(models), tuple(changes), message)
