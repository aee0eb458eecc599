"""What the retrain controller keeps in ``status.retrain``: frozen dataclasses with ``from_status`` /
``to_status`` (kopf's pattern for stored state). Pure.

- ``runs``: Jobs started so far; the next Job's serial, so its name and the candidate's version
  are functions of the stored state (two replicas compute the same name: the create conflicts).
- ``scheduleAnchor``: the schedule fires for cron times after it (the last one fired, or when
  the schedule was first seen: a new schedule does not fire for times before it existed).
- ``triggers``: the last firing of each trigger type (of ``MaintenanceWindow``: of each window),
  its ``key`` saying what fired it; the same key never fires twice.
- ``run``: the current or last Job; ``candidate``: the last candidate read from its manifest;
  ``promotion``: an automatic promotion in force; ``history``: bounded, newest last.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from ..timeutil import format_time, parse_time

__all__ = [
    "HISTORY_LIMIT",
    "Candidate",
    "Firing",
    "Promotion",
    "RetrainState",
    "Run",
    "TriggerType",
]

HISTORY_LIMIT = 10
TriggerType = Literal["Schedule", "Drift", "QualityDrop", "NewData", "MaintenanceWindow"]
TRIGGER_TYPES: tuple[TriggerType, ...] = ("Schedule", "Drift", "QualityDrop", "NewData", "MaintenanceWindow")
WINDOW_KEY_SEPARATOR = "@"  # a MaintenanceWindow firing's key: <window>@<window start>
MAX_WINDOW_FIRINGS = 24  # status.retrain.triggers holds 32: the other four types and these


def _time(raw: Any) -> datetime | None:
    return parse_time(raw) if isinstance(raw, str) else None


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class Firing:
    """One trigger that fired: its type, what fired it (``key``) and why, in words."""

    type: TriggerType
    key: str
    message: str
    time: datetime | None = None
    job: str | None = None

    @property
    def window(self) -> str | None:
        """The MaintenanceWindow a ``MaintenanceWindow`` firing came from (``None`` for the others)."""
        if self.type != "MaintenanceWindow":
            return None
        return self.key.rpartition(WINDOW_KEY_SEPARATOR)[0]

    @property
    def window_start(self) -> datetime | None:
        if self.type != "MaintenanceWindow":
            return None
        return parse_time(self.key.rpartition(WINDOW_KEY_SEPARATOR)[2])

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Firing | None:
        kind = d.get("type")
        if kind not in TRIGGER_TYPES:
            return None
        return cls(kind, str(d.get("key", "")), str(d.get("message", "")), _time(d.get("time")), d.get("job"))

    def to_status(self) -> dict[str, Any]:
        return _drop_none(
            {
                "type": self.type,
                "key": self.key,
                "message": self.message,
                "time": format_time(self.time) if self.time else None,
                "job": self.job,
            }
        )


@dataclass(frozen=True)
class Run:
    job: str
    serial: int
    triggers: tuple[str, ...]
    parent_version: str
    parent_uri: str
    candidate_version: str
    candidate_uri: str
    state: Literal["Running", "Succeeded", "Failed"] = "Running"
    start_time: datetime | None = None
    completion_time: datetime | None = None
    message: str = ""

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Run:
        state = d.get("state")
        return cls(
            job=str(d.get("job", "")),
            serial=int(d.get("serial", 0)),
            triggers=tuple(str(t) for t in d.get("triggers") or ()),
            parent_version=str(d.get("parentVersion", "")),
            parent_uri=str(d.get("parentUri", "")),
            candidate_version=str(d.get("candidateVersion", "")),
            candidate_uri=str(d.get("candidateUri", "")),
            state=state if state in ("Running", "Succeeded", "Failed") else "Running",
            start_time=_time(d.get("startTime")),
            completion_time=_time(d.get("completionTime")),
            message=str(d.get("message", "")),
        )

    def to_status(self) -> dict[str, Any]:
        return _drop_none(
            {
                "job": self.job,
                "serial": self.serial,
                "triggers": list(self.triggers),
                "parentVersion": self.parent_version,
                "parentUri": self.parent_uri,
                "candidateVersion": self.candidate_version,
                "candidateUri": self.candidate_uri,
                "state": self.state,
                "startTime": format_time(self.start_time) if self.start_time else None,
                "completionTime": format_time(self.completion_time) if self.completion_time else None,
                "message": self.message or None,
            }
        )


@dataclass(frozen=True)
class Candidate:
    """A retrained version as its manifest describes it, and what happens to it next."""

    version: str
    uri: str
    parent_version: str
    passed: bool
    reasons: tuple[str, ...] = ()
    figures: Mapping[str, Any] | None = None
    feedback_records: int | None = None
    time: datetime | None = None
    action: Literal["CommitToGit", "Canary", "None"] = "None"

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Candidate:
        action = d.get("action")
        return cls(
            version=str(d.get("version", "")),
            uri=str(d.get("uri", "")),
            parent_version=str(d.get("parentVersion", "")),
            passed=d.get("gate") == "Passed",
            reasons=tuple(str(r) for r in d.get("reasons") or ()),
            figures=dict(d["figures"]) if isinstance(d.get("figures"), Mapping) else None,
            feedback_records=d.get("feedbackRecords"),
            time=_time(d.get("time")),
            action=action if action in ("CommitToGit", "Canary", "None") else "None",
        )

    def to_status(self) -> dict[str, Any]:
        return _drop_none(
            {
                "version": self.version,
                "uri": self.uri,
                "parentVersion": self.parent_version,
                "gate": "Passed" if self.passed else "Failed",
                "reasons": list(self.reasons),
                "figures": dict(self.figures) if self.figures is not None else None,
                "feedbackRecords": self.feedback_records,
                "time": format_time(self.time) if self.time else None,
                "action": self.action,
            }
        )


PromotionState = Literal["Canary", "Serving", "RolledBack", "Superseded"]


@dataclass(frozen=True)
class Promotion:
    """An automatic promotion: the candidate served instead of ``spec.model`` while the spec
    still names ``spec_version`` / ``spec_uri`` (a Git change of ``spec.model`` ends it)."""

    version: str
    uri: str
    spec_version: str
    spec_uri: str
    state: PromotionState = "Canary"
    time: datetime | None = None
    message: str = ""

    @property
    def in_force(self) -> bool:
        return self.state in ("Canary", "Serving")

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Promotion:
        state = d.get("state")
        return cls(
            version=str(d.get("version", "")),
            uri=str(d.get("uri", "")),
            spec_version=str(d.get("specVersion", "")),
            spec_uri=str(d.get("specUri", "")),
            state=state if state in ("Canary", "Serving", "RolledBack", "Superseded") else "Superseded",
            time=_time(d.get("time")),
            message=str(d.get("message", "")),
        )

    def to_status(self) -> dict[str, Any]:
        return _drop_none(
            {
                "version": self.version,
                "uri": self.uri,
                "specVersion": self.spec_version,
                "specUri": self.spec_uri,
                "state": self.state,
                "time": format_time(self.time) if self.time else None,
                "message": self.message or None,
            }
        )


@dataclass(frozen=True)
class RetrainState:
    runs: int = 0
    schedule_anchor: datetime | None = None
    fired: tuple[Firing, ...] = ()
    run: Run | None = None
    candidate: Candidate | None = None
    promotion: Promotion | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    served_by: str | None = None
    spec_version: str | None = None
    served_version: str | None = None

    @property
    def running(self) -> bool:
        return self.run is not None and self.run.state == "Running"

    def last_key(self, kind: TriggerType) -> str | None:
        return next((f.key for f in self.fired if f.type == kind), None)

    def last_window_firing(self, window: str) -> Firing | None:
        """The last ``MaintenanceWindow`` firing of ``window`` (each window keeps its own)."""
        return next((f for f in self.fired if f.type == "MaintenanceWindow" and f.window == window), None)

    def with_firings(self, firings: tuple[Firing, ...]) -> RetrainState:
        replaced = {(f.type, f.window) for f in firings}
        kept = tuple(f for f in self.fired if (f.type, f.window) not in replaced)
        windows = sorted(
            (f for f in (*kept, *firings) if f.window is not None),
            key=lambda f: f.window_start or datetime.min.replace(tzinfo=UTC),
        )
        # Bounded like the CRD's list: the oldest windows' firings go first (their requests,
        # answered long ago, are no longer Requested in those windows' lastRuns).
        dropped = {id(f) for f in windows[: max(0, len(windows) - MAX_WINDOW_FIRINGS)]}
        kept = tuple(f for f in kept if id(f) not in dropped)
        firings = tuple(f for f in firings if id(f) not in dropped)
        return replace(
            self,
            fired=tuple(
                sorted((*kept, *firings), key=lambda f: (TRIGGER_TYPES.index(f.type), f.window or ""))
            ),
        )

    def with_history(self, entry: Mapping[str, Any]) -> RetrainState:
        return replace(self, history=(*self.history, dict(entry))[-HISTORY_LIMIT:])

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> RetrainState:
        d = (status or {}).get("retrain") or {}
        if not isinstance(d, Mapping):
            return cls()
        fired = tuple(
            f for f in (Firing.from_status(x) for x in d.get("triggers") or () if isinstance(x, Mapping)) if f
        )
        return cls(
            runs=int(d.get("runs", 0)),
            schedule_anchor=_time(d.get("scheduleAnchor")),
            fired=fired,
            run=Run.from_status(d["run"]) if isinstance(d.get("run"), Mapping) else None,
            candidate=Candidate.from_status(d["candidate"])
            if isinstance(d.get("candidate"), Mapping)
            else None,
            promotion=Promotion.from_status(d["promotion"])
            if isinstance(d.get("promotion"), Mapping)
            else None,
            history=tuple(dict(h) for h in d.get("history") or () if isinstance(h, Mapping)),
            served_by=d.get("servedBy"),
            spec_version=d.get("specVersion"),
            served_version=d.get("servedVersion"),
        )

    def to_status(self) -> dict[str, Any]:
        return _drop_none(
            {
                "runs": self.runs,
                "scheduleAnchor": format_time(self.schedule_anchor) if self.schedule_anchor else None,
                "triggers": [f.to_status() for f in self.fired] or None,
                "run": self.run.to_status() if self.run else None,
                "candidate": self.candidate.to_status() if self.candidate else None,
                "promotion": self.promotion.to_status() if self.promotion else None,
                "history": [dict(h) for h in self.history] or None,
                "servedBy": self.served_by,
                "specVersion": self.spec_version,
                "servedVersion": self.served_version,
            }
        )
