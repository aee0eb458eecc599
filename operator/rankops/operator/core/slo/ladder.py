"""The runbook's remediation ladder for a breaching stable model, as a pure state machine.

One run climbs, in order and at most once each: ``InvalidateCaches`` (every pod of the track)
→ ``RollingRestart`` (after ``settle``, if still breaching) → verify after another ``settle``
→ ``RequestRetrain`` when the retrain policy allows it (at most once per breach episode). A
run that verifies healthy ends ``Resolved``; one that does not ends ``RetrainRequested`` or
``StillBreaching``. Then:

- **never a loop**: a breach episode (from the first breach until the objective is seen
  healthy again) starts at most ``maxAttempts`` runs; after that the ladder only reports
  ``AttemptsExhausted`` until the objective recovers;
- **cooldown**: a run never starts within ``cooldown`` of the previous run's end, even in a
  new episode (a flapping objective acts at most once per cooldown);
- **urgency**: a breach at P0/P1 (or of an objective without tiers) acts at once; P2 and lower
  are recorded and notified only (``Observation.acts``); a run already climbing continues;
- **no data, no action**: ``NoData`` leaves the state untouched.

``advance(state, observation, policy, now, retrain_allowed) -> LadderDecision`` returns the new
state, at most one action for the shell to take, and a CamelCase ``reason`` with a message.
``LadderState`` is stored in status with ``from_status`` / ``to_status``; the shell records
each step's outcome with ``LadderState.with_outcome``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from ..timeutil import format_time, parse_time
from .policy import RemediationPolicy
from .state import State, acts_at_once

__all__ = ["Action", "LadderDecision", "LadderState", "Observation", "advance"]

Action = Literal["InvalidateCaches", "RollingRestart", "RequestRetrain"]
Stage = Literal["Idle", "CachesInvalidated", "Restarted"]
STEP_LOG_LIMIT = 12


@dataclass(frozen=True)
class Observation:
    """What the evaluation found for the model's stable track (its worst objective)."""

    state: State
    objective: str = ""
    value: float | None = None
    severity: str | None = None

    @property
    def breached(self) -> bool:
        return self.state == "Breached"

    @property
    def acts(self) -> bool:
        return self.breached and acts_at_once(self.severity)

    def describe(self) -> str:
        value = "no value" if self.value is None else f"{self.value:.4g}"
        tier = f" ({self.severity})" if self.severity else ""
        return f"{self.objective or 'objective'} {self.state} at {value}{tier}"


@dataclass(frozen=True)
class LadderState:
    stage: Stage = "Idle"
    stage_at: datetime | None = None
    attempts: int = 0
    retrain_requested: bool = False
    run_ended_at: datetime | None = None
    last_outcome: str | None = None
    steps: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> LadderState:
        raw = raw or {}

        def when(key: str) -> datetime | None:
            value = raw.get(key)
            return parse_time(str(value)) if value else None

        stage = raw.get("stage", "Idle")
        return cls(
            stage=stage if stage in ("Idle", "CachesInvalidated", "Restarted") else "Idle",
            stage_at=when("stageTime"),
            attempts=int(raw.get("attempts", 0)),
            retrain_requested=bool(raw.get("retrainRequested", False)),
            run_ended_at=when("runEndedTime"),
            last_outcome=raw.get("lastOutcome"),
            steps=tuple(raw.get("steps") or ()),
        )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "attempts": self.attempts}
        if self.stage_at:
            out["stageTime"] = format_time(self.stage_at)
        if self.retrain_requested:
            out["retrainRequested"] = True
        if self.run_ended_at:
            out["runEndedTime"] = format_time(self.run_ended_at)
        if self.last_outcome:
            out["lastOutcome"] = self.last_outcome
        if self.steps:
            out["steps"] = [dict(s) for s in self.steps]
        return out

    def _log(self, step: str, now: datetime, detail: str) -> tuple[Mapping[str, Any], ...]:
        entry = {"step": step, "time": format_time(now), "detail": detail}
        return (*self.steps, entry)[-STEP_LOG_LIMIT:]

    def with_outcome(self, outcome: str) -> LadderState:
        """Record the shell's result of the last step (``"3/3 pods invalidated"``, an error)."""
        if not self.steps:
            return self
        last = {**self.steps[-1], "outcome": outcome}
        return replace(self, steps=(*self.steps[:-1], last))


@dataclass(frozen=True)
class LadderDecision:
    state: LadderState
    action: Action | None
    reason: str
    message: str


def _elapsed(since: datetime | None, now: datetime, seconds: float) -> bool:
    return since is None or now >= since + timedelta(seconds=seconds)


def advance(
    state: LadderState,
    obs: Observation,
    policy: RemediationPolicy,
    now: datetime,
    retrain_allowed: bool = False,
) -> LadderDecision:
    what = obs.describe()
    if obs.state == "NoData":
        return LadderDecision(state, None, "NoData", f"{what}: no action without data")

    if not obs.breached:
        if state.stage != "Idle":
            if not _elapsed(state.stage_at, now, policy.settle_s):
                return LadderDecision(state, None, "Settling", f"{what}; verifying after the settle time")
            ended = replace(
                state,
                stage="Idle",
                stage_at=None,
                attempts=0,
                retrain_requested=False,
                run_ended_at=now,
                last_outcome="Resolved",
                steps=state._log("Verify", now, f"resolved: {what}"),
            )
            return LadderDecision(ended, None, "RemediationResolved", f"verified healthy: {what}")
        if state.attempts or state.retrain_requested:
            # the episode is over: a later breach starts afresh (still behind the cooldown)
            return LadderDecision(
                replace(state, attempts=0, retrain_requested=False), None, "Recovered", what
            )
        return LadderDecision(state, None, "Healthy", what)

    if state.stage == "CachesInvalidated":
        if not _elapsed(state.stage_at, now, policy.settle_s):
            return LadderDecision(state, None, "Settling", f"{what}; caches invalidated, settling")
        restarted = replace(
            state, stage="Restarted", stage_at=now, steps=state._log("RollingRestart", now, what)
        )
        return LadderDecision(
            restarted, "RollingRestart", "RollingRestart", f"{what} after cache invalidation"
        )

    if state.stage == "Restarted":
        if not _elapsed(state.stage_at, now, policy.settle_s):
            return LadderDecision(state, None, "Settling", f"{what}; restarted, verifying after settling")
        if retrain_allowed and not state.retrain_requested:
            ended = replace(
                state,
                stage="Idle",
                stage_at=None,
                retrain_requested=True,
                run_ended_at=now,
                last_outcome="RetrainRequested",
                steps=state._log("RequestRetrain", now, f"still breaching after restart: {what}"),
            )
            return LadderDecision(ended, "RequestRetrain", "RetrainRequested", f"{what} after restart")
        ended = replace(
            state,
            stage="Idle",
            stage_at=None,
            run_ended_at=now,
            last_outcome="StillBreaching",
            steps=state._log("Verify", now, f"still breaching: {what}"),
        )
        return LadderDecision(ended, None, "StillBreaching", f"{what} after invalidation and restart")

    # Idle and breached: maybe start a run
    if not obs.acts:
        return LadderDecision(
            state, None, "RecordedOnly", f"{what}: recorded and notified, no action at this severity"
        )
    if state.attempts >= policy.max_attempts:
        return LadderDecision(
            state,
            None,
            "AttemptsExhausted",
            f"{what}; {state.attempts} remediation runs done, waiting for recovery",
        )
    if not _elapsed(state.run_ended_at, now, policy.cooldown_s):
        assert state.run_ended_at is not None
        until = format_time(state.run_ended_at + timedelta(seconds=policy.cooldown_s))
        return LadderDecision(state, None, "Cooldown", f"{what}; next remediation not before {until}")
    started = replace(
        state,
        stage="CachesInvalidated",
        stage_at=now,
        attempts=state.attempts + 1,
        last_outcome=None,
        steps=state._log("InvalidateCaches", now, what),
    )
    return LadderDecision(started, "InvalidateCaches", "InvalidateCaches", what)
