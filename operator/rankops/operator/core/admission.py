"""Admission review of the three resources: what the CRD schema and its CEL rules cannot check.

Pure: a spec (and, for a RankingModel, the QualitySLO it names, looked up by the shell) in, a
:class:`Review` out. The operator's webhook (``controllers.admission``) refuses an object
whose review has ``problems`` and passes its ``warnings`` back to the client (kubectl prints
them as ``Warning: ...``).

Refused (the operator could not act on the object as written):

- whatever the operator's own spec parsers refuse (``core.spec``): the same message the
  controller would otherwise report later in a condition;
- storage URIs with a protocol fsspec does not know (``s4://``, ``fiel://``): the model URI,
  the trainer's data and output, a MaintenanceWindow's backup destination and task data;
- a PromQL ``query`` of an objective that does not parse once its placeholders are filled,
  that uses a placeholder other than ``$model``, ``$track``, ``$version``, ``$namespace``,
  ``$window``, or that does not return a number per track (a range vector or a string);
- a MaintenanceWindow schedule that is not cron, never matches (``0 0 31 2 *``), or names an
  unknown IANA time zone (``zoneinfo``).

Warned, not refused (GitOps applies objects in an order of its own; the operator waits):

- a RankingModel whose ``sloRef`` names a QualitySLO that does not exist (yet) or is invalid;
- a MaintenanceWindow whose ``duration`` is longer than the gap between two of its windows.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fsspec
import promql_parser

from .maintenance.schedule import Schedule, parse_schedule, window_starts
from .promql import objective_queries
from .spec import (
    QualitySLOSpec,
    SpecError,
    parse_maintenance_window_spec,
    parse_quality_slo_spec,
    parse_ranking_model_spec,
)

__all__ = [
    "PLACEHOLDERS",
    "Review",
    "review_maintenance_window",
    "review_quality_slo",
    "review_ranking_model",
    "slo_reference",
]

PLACEHOLDERS = ("model", "track", "version", "namespace", "window")
# Window starts looked at for overlaps: a year of a daily schedule, a week of an hourly one.
_OVERLAP_LOOKAHEAD = 400


@dataclass(frozen=True)
class Review:
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


def slo_reference(spec: Mapping[str, Any]) -> str | None:
    """The QualitySLO a RankingModel's analysis names, or None."""
    rollout = spec.get("rollout") if isinstance(spec, Mapping) else None
    analysis = rollout.get("analysis") if isinstance(rollout, Mapping) else None
    ref = analysis.get("sloRef") if isinstance(analysis, Mapping) else None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


def review_ranking_model(spec: Mapping[str, Any], namespace: str, slo: Mapping[str, Any] | None) -> Review:
    """``slo``: the named QualitySLO object as stored, None when it does not exist."""
    try:
        parsed = parse_ranking_model_spec(spec)
    except SpecError as exc:
        return Review(problems=(str(exc),))
    trainer = parsed.retrain.trainer if parsed.retrain else None
    uris = [
        ("spec.model.uri", parsed.model.uri),
        ("spec.retrain.trainer.data", trainer.data if trainer else None),
        ("spec.retrain.trainer.outputUri", trainer.output_uri if trainer else None),
    ]
    problems = [p for field, uri in uris if (p := _uri_problem(field, uri))]
    warnings: list[str] = []
    name = slo_reference(spec)
    if name is not None:
        if slo is None:
            warnings.append(
                f"spec.rollout.analysis.sloRef: QualitySLO {namespace}/{name} does not exist (yet): "
                "analysis waits for it (SLONotFound) and the canary does not advance"
            )
        else:
            slo_review = review_quality_slo(slo.get("spec") or {})
            if not slo_review.allowed:
                warnings.append(
                    f"spec.rollout.analysis.sloRef: QualitySLO {namespace}/{name} is invalid "
                    f"({slo_review.message}): analysis cannot judge the canary"
                )
    return Review(problems=tuple(problems), warnings=tuple(warnings))


def review_quality_slo(spec: Mapping[str, Any]) -> Review:
    try:
        parsed = parse_quality_slo_spec(spec)
    except SpecError as exc:
        return Review(problems=(str(exc),))
    return Review(problems=tuple(_query_problems(parsed)))


def review_maintenance_window(spec: Mapping[str, Any], now: datetime) -> Review:
    """``now``: where the overlap check starts looking at the schedule's windows."""
    try:
        parsed = parse_maintenance_window_spec(spec)
        schedule = parse_schedule(parsed.schedule, parsed.time_zone, parsed.duration_s)
    except SpecError as exc:
        return Review(problems=(str(exc),))
    problems: list[str] = []
    for i, task in enumerate(parsed.tasks):
        path = f"spec.tasks[{i}]"
        uris = [
            (f"{path}.backup.destination", task.backup.destination if task.backup else None),
            (f"{path}.retrain.data", task.retrain.data if task.retrain else None),
            (f"{path}.evaluate.data", task.evaluate.data if task.evaluate else None),
        ]
        problems += [p for field, uri in uris if (p := _uri_problem(field, uri))]
    overlap = _overlap_warning(schedule, now)
    return Review(problems=tuple(problems), warnings=(overlap,) if overlap else ())


# ---------------------------------------------------------------------------------- helpers


def _uri_problem(field: str, uri: str | None) -> str | None:
    if not uri:
        return None
    protocol, _ = fsspec.core.split_protocol(uri)
    if protocol is None or protocol in fsspec.available_protocols():
        return None
    return (
        f"{field}: unknown storage protocol {protocol!r} in {uri!r} "
        "(fsspec URIs such as file:///path, s3://bucket/key, gs://bucket/key)"
    )


_PLACEHOLDER = re.compile(r"\$(?:(\$)|(\w+)|\{(\w+)\})")


def _query_problems(spec: QualitySLOSpec) -> list[str]:
    problems: list[str] = []
    for i, objective in enumerate(spec.objectives):
        if not objective.query:
            continue
        field = f"spec.objectives[{i}].query"
        unknown = sorted(
            {
                name
                for escaped, bare, braced in _PLACEHOLDER.findall(objective.query)
                if not escaped and (name := bare or braced) not in PLACEHOLDERS
            }
        )
        if unknown:
            known = ", ".join(f"${p}" for p in PLACEHOLDERS)
            problems.append(
                f"{field}: unknown placeholder {', '.join('$' + u for u in unknown)} (known: {known})"
            )
            continue
        query = objective_queries(
            objective, model="m", track="canary", version="1.0.0", window_s=300, namespace="default"
        ).value
        assert query is not None  # an objective with a query is a value objective
        try:
            expr = promql_parser.parse(query)
        except ValueError as exc:
            problems.append(f"{field}: not valid PromQL ({exc}): {objective.query!r}")
            continue
        if isinstance(expr, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
            problems.append(
                f"{field}: returns a range vector, not a number per track; wrap it in a function "
                f"such as avg_over_time(...) or rate(...): {objective.query!r}"
            )
        elif isinstance(expr, promql_parser.StringLiteral):
            problems.append(f"{field}: returns a string, not a number: {objective.query!r}")
    return problems


def _overlap_warning(schedule: Schedule, now: datetime) -> str | None:
    # The schedule's own starts (daylight-saving changes as the controller follows them).
    starts = list(itertools.islice(window_starts(schedule, now), _OVERLAP_LOOKAHEAD))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    shortest = min(gaps, default=None)
    duration = schedule.duration.total_seconds()
    if shortest is None or duration <= shortest:
        return None
    return (
        f"spec.duration: {duration:g}s is longer than the {shortest:g}s between two windows of "
        f"{schedule.cron!r}: windows overlap, so the window never closes between them"
    )
