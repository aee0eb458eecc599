"""The stored state of a rollout: ``status`` of a RankingModel, typed.

kopf's own pattern for stored state: a frozen dataclass with ``from_status`` / ``to_status``.
Everything needed to resume after an operator restart lives here; the camelCase dict exists only
at this edge (``from_status`` where status is read, ``to_status`` / ``merge_patch`` where it is
written). Status keys the planner does not own (kopf's) are ignored on the way in and never
written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from ..diff import merge_patch_between
from ..evidence import Evidence
from ..experiment import ExperimentStatus
from ..timeutil import format_time, parse_time
from ..verdict import Verdict

__all__ = [
    "HALTED_REASONS",
    "HISTORY_LIMIT",
    "RETRYABLE_REASONS",
    "ROLLOUT_RESET",
    "STATUS_KEYS",
    "UNAVAILABLE_REASONS",
    "HistoryEntry",
    "Observed",
    "Phase",
    "RolloutState",
    "merge_patch",
]

HISTORY_LIMIT = 10

Phase = Literal["Pending", "Progressing", "Paused", "Healthy", "Degraded", "RolledBack", "Failed"]

# Pauses that wait for a person (promote, abort, retry or a spec change). MetricsUnavailable resumes by
# itself, ProgressDeadlineExceeded when the canary becomes ready after all; a retry restarts either.
HALTED_REASONS = frozenset({"AnalysisFailed", "AnalysisInconclusive", "NoAnalysisData", "AnalysisTimedOut"})
# Pauses for lack of an analysis to run (a verdict with ``metrics_unavailable``): they resume by themselves.
UNAVAILABLE_REASONS = frozenset({"MetricsUnavailable", "SLONotFound", "InvalidSLO"})
RETRYABLE_REASONS = HALTED_REASONS | {"ProgressDeadlineExceeded"}


@dataclass(frozen=True)
class Observed:
    """What the shell saw of the child Deployments; ``None`` = unknown (treated as ready).

    A track is ready only when its Deployment runs its current template
    (``status.observedGeneration >= metadata.generation``) with all desired replicas updated and
    ready: a stale "ready" would end a step's wait or a drain too early.
    """

    canary_ready: bool | None = None
    stable_ready: bool | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One revision's outcome (``status.history[]``)."""

    revision: int
    version: str
    outcome: str  # Deployed | Promoted | RolledBack | Aborted | Failed | Superseded | Kept
    reason: str
    at: datetime
    uri: str | None = None  # the artifact the revision served (what `kubectl rankops undo` restores)
    experiment: Mapping[str, Any] | None = None  # a decided A/B experiment's figures (its summary)

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> HistoryEntry:
        at = parse_time(d.get("at"))
        if at is None:
            raise ValueError(f"history entry without a time: {dict(d)}")
        return cls(
            revision=int(d.get("revision", 0)),
            version=str(d.get("version", "")),
            outcome=str(d.get("outcome", "")),
            reason=str(d.get("reason", "")),
            at=at,
            uri=str(d["uri"]) if d.get("uri") else None,
            experiment=dict(d["experiment"]) if isinstance(d.get("experiment"), Mapping) else None,
        )

    def to_status(self) -> dict[str, Any]:
        out = {
            "revision": self.revision,
            "version": self.version,
            "outcome": self.outcome,
            "reason": self.reason,
            "at": format_time(self.at),
        }
        if self.uri:
            out["uri"] = self.uri
        if self.experiment is not None:
            out["experiment"] = dict(self.experiment)
        return out


@dataclass(frozen=True)
class RolloutState:
    """The status the planner owns, typed."""

    phase: str = "Pending"
    message: str = ""
    stable_version: str | None = None
    stable_uri: str | None = None
    canary_version: str | None = None
    canary_uri: str | None = None
    canary_weight: int = 0
    current_step: int | None = None
    canary_revision: int = 0
    observed_generation: int | None = None
    rollout_started_at: datetime | None = None
    step_started_at: datetime | None = None
    step_ready_at: datetime | None = None
    last_analysis_at: datetime | None = None
    step_looks: int = 0
    step_failures: int = 0
    step_inconclusive: int = 0
    step_passed: bool = False
    total_looks: int = 0
    pause_reason: str | None = None
    aborted_version: str | None = None
    canary_draining: bool = False
    awaiting_stable_since: datetime | None = None
    waiting_for_samples_since: datetime | None = None
    last_promote_token: str | None = None
    last_abort_token: str | None = None
    last_retry_token: str | None = None
    last_promote_step_token: str | None = None
    conditions: tuple[Mapping[str, Any], ...] = ()  # metav1.Condition, already the wire form
    last_analysis: Verdict | None = None
    evidence: Evidence | None = None  # accumulated over the rollout (``core.evidence``)
    evidence_warned_step: int | None = None  # the step whose short-evidence Warning was posted
    experiment: ExperimentStatus | None = None  # the running or last A/B experiment (``core.experiment``)
    history: tuple[HistoryEntry, ...] = ()

    @property
    def in_rollout(self) -> bool:
        return self.canary_version is not None

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> RolloutState:
        status = status or {}
        values: dict[str, Any] = {}
        for key, (attr, read, _) in _CODEC.items():
            raw = status.get(key)
            if raw is not None:
                values[attr] = read(raw)
        return cls(**values)

    def to_status(self) -> dict[str, Any]:
        """camelCase dict; unset optional fields are left out (so a merge patch deletes them)."""
        out: dict[str, Any] = {}
        for key, (attr, _, write) in _CODEC.items():
            value = getattr(self, attr)
            if value is not None:
                out[key] = write(value)
        return out


def _same(value: Any) -> Any:
    return value


def _camel(attr: str) -> str:
    head, *rest = attr.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _codec(attr: str, kind: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(read, write) of one field, by its annotated type."""
    if attr == "conditions":
        return (lambda raw: tuple(dict(c) for c in raw if isinstance(c, Mapping))), (
            lambda v: [dict(c) for c in v]
        )
    if attr == "history":
        return (lambda raw: tuple(HistoryEntry.from_status(h) for h in raw if isinstance(h, Mapping))), (
            lambda v: [h.to_status() for h in v]
        )
    if attr == "evidence":
        return Evidence.from_status, lambda v: v.to_status()
    if attr == "experiment":
        return ExperimentStatus.from_status, lambda v: v.to_status()
    if attr == "last_analysis":
        return (lambda raw: Verdict.from_status(raw) if isinstance(raw, Mapping) else None), (
            lambda v: v.to_status()
        )
    if "datetime" in kind:
        return parse_time, format_time
    if kind == "bool":
        return bool, _same
    if "int" in kind:
        return int, _same
    return str, _same


# status key -> (attribute, read, write); annotations are strings (``from __future__ import annotations``)
_CODEC: dict[str, tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = {
    _camel(f.name): (f.name, *_codec(f.name, str(f.type))) for f in fields(RolloutState)
}
STATUS_KEYS = frozenset(_CODEC)

# What a rollout's end (promotion, rollback, cancellation) resets.
ROLLOUT_RESET: dict[str, Any] = {
    "canary_version": None,
    "canary_uri": None,
    "canary_weight": 0,
    "current_step": None,
    "rollout_started_at": None,
    "step_started_at": None,
    "step_ready_at": None,
    "last_analysis_at": None,
    "step_looks": 0,
    "step_failures": 0,
    "step_inconclusive": 0,
    "step_passed": False,
    "total_looks": 0,
    "pause_reason": None,
    "waiting_for_samples_since": None,
    "evidence": None,
    "evidence_warned_step": None,
}


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch from status ``old`` to ``new``, over the keys the planner owns."""
    patch: dict[str, Any] = merge_patch_between(
        {k: v for k, v in old.items() if k in STATUS_KEYS}, {k: v for k, v in new.items() if k in STATUS_KEYS}
    )
    return patch
